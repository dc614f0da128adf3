using System.Text.Json.Serialization;

namespace SentryVibe.Protocol;

/// <summary>
/// One event as it leaves a runner: its per-runner sequence number, the project it is about and the typed body.
/// The runner keeps it in its outbox until the broker acks its seq.
/// </summary>
public sealed record RunnerEvent(long Seq, Guid? ProjectId, DateTimeOffset Timestamp, ProjectEvent Body);

/// <summary>The typed progress events; the kebab-case discriminator is the public event <c>type</c>.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(BuildStarted), EventTypes.BuildStarted)]
[JsonDerivedType(typeof(AgentMessage), EventTypes.AgentMessage)]
[JsonDerivedType(typeof(ToolUse), EventTypes.ToolUse)]
[JsonDerivedType(typeof(TodosUpdated), EventTypes.TodosUpdated)]
[JsonDerivedType(typeof(BuildLog), EventTypes.BuildLog)]
[JsonDerivedType(typeof(ProjectMetadata), EventTypes.ProjectMetadata)]
[JsonDerivedType(typeof(CheckpointCreated), EventTypes.CheckpointCreated)]
[JsonDerivedType(typeof(BuildCompleted), EventTypes.BuildCompleted)]
[JsonDerivedType(typeof(BuildFailed), EventTypes.BuildFailed)]
[JsonDerivedType(typeof(BuildCancelled), EventTypes.BuildCancelled)]
[JsonDerivedType(typeof(BuildQueued), EventTypes.BuildQueued)]
[JsonDerivedType(typeof(DevServerStarting), EventTypes.DevServerStarting)]
[JsonDerivedType(typeof(DevServerLog), EventTypes.DevServerLog)]
[JsonDerivedType(typeof(PortDetected), EventTypes.PortDetected)]
[JsonDerivedType(typeof(DevServerExited), EventTypes.DevServerExited)]
[JsonDerivedType(typeof(ProjectDeleted), EventTypes.ProjectDeleted)]
[JsonDerivedType(typeof(CommandFailed), EventTypes.CommandFailed)]
[JsonDerivedType(typeof(UserMessage), EventTypes.UserMessage)]
public abstract record ProjectEvent;

public static class EventTypes
{
    public const string BuildStarted = "build-started";
    public const string AgentMessage = "agent-message";
    public const string ToolUse = "tool-use";
    public const string TodosUpdated = "todos-updated";
    public const string BuildLog = "build-log";
    public const string ProjectMetadata = "project-metadata";
    public const string CheckpointCreated = "checkpoint-created";
    public const string BuildCompleted = "build-completed";
    public const string BuildFailed = "build-failed";
    public const string BuildCancelled = "build-cancelled";
    public const string BuildQueued = "build-queued";
    public const string DevServerStarting = "dev-server-starting";
    public const string DevServerLog = "dev-server-log";
    public const string PortDetected = "port-detected";
    public const string DevServerExited = "dev-server-exited";
    public const string ProjectDeleted = "project-deleted";
    public const string CommandFailed = "command-failed";
    public const string UserMessage = "user-message";
}

/// <summary>A turn begins. <see cref="Turn"/> is 1 for the first build and counts up with follow-ups and resumes.</summary>
public sealed record BuildStarted(string Prompt, string TemplateId, string Agent, int Turn = 1, string? Reason = null) : ProjectEvent;

/// <summary>The prompt of a turn as the user typed it (written by Web when it queues the turn).</summary>
public sealed record UserMessage(string Prompt) : ProjectEvent;

/// <summary>Text the agent said (Markdown).</summary>
public sealed record AgentMessage(string Text) : ProjectEvent;

public static class ToolStatuses
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

/// <summary>A tool call of the agent; sent when it starts (running) and again when its result is known.</summary>
public sealed record ToolUse(string ToolUseId, string Name, string InputSummary, string Status, string? ResultSummary = null) : ProjectEvent;

public static class TodoStatuses
{
    public const string Pending = "pending";
    public const string InProgress = "in_progress";
    public const string Completed = "completed";
}

public sealed record TodoItem(string Content, string Status, string? ActiveForm = null);

/// <summary>The full todo list after a change.</summary>
public sealed record TodosUpdated(IReadOnlyList<TodoItem> Todos) : ProjectEvent;

public sealed record BuildLog(string Message, string Level = "info") : ProjectEvent;

public sealed record ProjectMetadata(
    string? Framework,
    string? RunCommand,
    int? Port,
    string? Path = null,
    string? TemplateId = null,
    string? SessionId = null) : ProjectEvent;

public sealed record CheckpointCreated(string CheckpointId, string Message, DateTimeOffset CreatedAt, int? Turn = null) : ProjectEvent;

public sealed record BuildCompleted(
    int Turns,
    long DurationMs,
    decimal CostUsd,
    long InputTokens,
    long OutputTokens,
    string? SessionId = null) : ProjectEvent;

public sealed record BuildFailed(string Reason) : ProjectEvent;

public sealed record BuildCancelled(string? Reason = null) : ProjectEvent;

/// <summary>The runner is at its concurrency limit; the build waits at <see cref="Position"/>.</summary>
public sealed record BuildQueued(int Position) : ProjectEvent;

public sealed record DevServerStarting(string Command, int? Port = null, string? Phase = null) : ProjectEvent;

public sealed record DevServerLog(string Line, string Stream = "stdout") : ProjectEvent;

public sealed record PortDetected(int Port, string PreviewUrl, string Provider = "relay") : ProjectEvent;

public sealed record DevServerExited(int? ExitCode, IReadOnlyList<string> LastLines, string? Reason = null) : ProjectEvent;

public sealed record ProjectDeleted : ProjectEvent;

/// <summary>A command the runner could not carry out, with the reason the user sees.</summary>
public sealed record CommandFailed(Guid CommandId, string CommandType, string Reason) : ProjectEvent;
