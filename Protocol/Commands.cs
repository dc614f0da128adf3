using System.Text.Json.Serialization;

namespace SentryVibe.Protocol;

/// <summary>
/// A command Web queues for a runner (a row in Postgres) and the broker delivers. The kebab-case
/// discriminator is also the command row's type.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(StartBuild), CommandTypes.StartBuild)]
[JsonDerivedType(typeof(FollowUpTurn), CommandTypes.FollowUp)]
[JsonDerivedType(typeof(CancelBuild), CommandTypes.Cancel)]
[JsonDerivedType(typeof(StartDevServer), CommandTypes.StartDevServer)]
[JsonDerivedType(typeof(StopDevServer), CommandTypes.StopDevServer)]
[JsonDerivedType(typeof(RestoreCheckpoint), CommandTypes.RestoreCheckpoint)]
[JsonDerivedType(typeof(DeleteProject), CommandTypes.DeleteProject)]
public abstract record RunnerCommand(Guid ProjectId);

public static class CommandTypes
{
    public const string StartBuild = "start-build";
    public const string FollowUp = "follow-up";
    public const string Cancel = "cancel";
    public const string StartDevServer = "start-dev-server";
    public const string StopDevServer = "stop-dev-server";
    public const string RestoreCheckpoint = "restore-checkpoint";
    public const string DeleteProject = "delete-project";
}

public static class CommandStatuses
{
    public const string Queued = "queued";
    public const string Delivered = "delivered";
    public const string Acked = "acked";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Expired = "expired";
}

/// <summary>Scaffold the template, then run the agent on the prompt.</summary>
public sealed record StartBuild(
    Guid ProjectId,
    string Slug,
    string Prompt,
    string TemplateId,
    string Agent,
    string? TemplateUrl = null,
    string? PreviewId = null,
    bool StartDevServerWhenReady = true) : RunnerCommand(ProjectId);

/// <summary>A further turn on the same project and agent session.</summary>
public sealed record FollowUpTurn(Guid ProjectId, string Prompt) : RunnerCommand(ProjectId);

/// <summary>Stops the agent's process tree; the project ends as cancelled.</summary>
public sealed record CancelBuild(Guid ProjectId) : RunnerCommand(ProjectId);

public sealed record StartDevServer(Guid ProjectId, string? PreviewId = null) : RunnerCommand(ProjectId);

public sealed record StopDevServer(Guid ProjectId) : RunnerCommand(ProjectId);

/// <summary>Restores the tree of a checkpoint as a new commit; history is never rewritten.</summary>
public sealed record RestoreCheckpoint(Guid ProjectId, string CheckpointId) : RunnerCommand(ProjectId);

/// <summary>Stops everything of the project and removes its folder.</summary>
public sealed record DeleteProject(Guid ProjectId) : RunnerCommand(ProjectId);
