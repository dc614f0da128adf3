namespace SentryVibe.Runner.Workspace;

/// <summary>A path or name that would leave the workspace, or is not a valid project name. The message is for the user.</summary>
public sealed class WorkspaceException(string message) : Exception(message);
