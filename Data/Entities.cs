using SentryVibe.Protocol;

namespace SentryVibe.Data;

public sealed class Project
{
    public Guid Id { get; set; }
    /// <summary>The user it belongs to (docs/accounts.md); null only in a database from before accounts, until the first start backfills it.</summary>
    public Guid? OwnerId { get; set; }
    public required string Slug { get; set; }
    public required string Name { get; set; }
    public required string Prompt { get; set; }
    public string Status { get; set; } = ProjectStatuses.Pending;
    /// <summary>Why the project is in its status when that needs saying (failed, cancelled, expired command, queued).</summary>
    public string? StatusReason { get; set; }
    public required string TemplateId { get; set; }
    public string? TemplateUrl { get; set; }
    public string? RunnerId { get; set; }
    public required string Agent { get; set; }
    public string? Path { get; set; }
    public string? RunCommand { get; set; }
    public string? Framework { get; set; }
    public string? SessionId { get; set; }
    public List<TodoItem> Todos { get; set; } = [];
    public DevServerState DevServer { get; set; } = new();
    /// <summary>Unguessable name of the relay host (<c>{PreviewId}.{previewDomain}</c>).</summary>
    public required string PreviewId { get; set; }
    public decimal CostUsd { get; set; }
    public int Turns { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    /// <summary>Id of the last event applied to this row.</summary>
    public long LastEventId { get; set; }
    /// <summary>Set when the user asked to delete it: a delete-project command is queued and the project takes no more commands.</summary>
    public DateTimeOffset? DeleteRequestedAt { get; set; }
    /// <summary>Set when the runner reported project-deleted (or the delete command expired): a tombstone, hidden everywhere.</summary>
    public DateTimeOffset? DeletedAt { get; set; }
}

public sealed class DevServerState
{
    public string Status { get; set; } = DevServerStatuses.Stopped;
    public int? Port { get; set; }
    public string? PreviewUrl { get; set; }
    public string? Provider { get; set; }
    public string? Reason { get; set; }
    public int? ExitCode { get; set; }
    public List<string> LastLines { get; set; } = [];
}

public sealed class Runner
{
    public required string Id { get; set; }
    /// <summary>The user whose token linked it (docs/accounts.md).</summary>
    public Guid? OwnerId { get; set; }
    public string? Name { get; set; }
    public string Status { get; set; } = RunnerStatuses.Offline;
    public DateTimeOffset? LastSeenAt { get; set; }
    public string? Version { get; set; }
    public string? Hostname { get; set; }
    /// <summary>The broker replica holding this runner's socket, when online.</summary>
    public string? BrokerId { get; set; }
    /// <summary>Internal address of that broker replica (for forwarding previews in a scale-out).</summary>
    public string? BrokerAddress { get; set; }
    public List<string> Capabilities { get; set; } = [];
    public List<string> Agents { get; set; } = [];
    public string? PreviewProvider { get; set; }
    /// <summary>Highest event seq committed for this runner.</summary>
    public long CommittedSeq { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

public static class RunnerStatuses
{
    public const string Online = "online";
    public const string Offline = "offline";
}

public sealed class RunnerToken
{
    public Guid Id { get; set; }
    /// <summary>The user who made it; the runner it links belongs to that user (docs/accounts.md).</summary>
    public Guid? OwnerId { get; set; }
    public required string Name { get; set; }
    /// <summary>
    /// The one runner id this token may link as (docs/runner-protocol.md). Null only for tokens made before ids were
    /// bound: such a token is bound to the id of its first Hello.
    /// </summary>
    public string? RunnerId { get; set; }
    /// <summary><see cref="Secrets.HashOf"/> of the token, "svr_" included; the token itself is shown once and never stored.</summary>
    public required byte[] Hash { get; set; }
    /// <summary>First characters, for recognising a token in the UI.</summary>
    public required string Prefix { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
}

public sealed class Command
{
    public Guid Id { get; set; }
    public required string RunnerId { get; set; }
    public Guid? ProjectId { get; set; }
    public required string Type { get; set; }
    /// <summary>The <see cref="RunnerCommand"/> as JSON (jsonb).</summary>
    public required string Payload { get; set; }
    public string Status { get; set; } = CommandStatuses.Queued;
    public string? Error { get; set; }
    public int Attempts { get; set; }
    public string? DeliveredBy { get; set; }
    /// <summary>W3C traceparent of the request that queued it, so one trace spans Web → Broker → Runner.</summary>
    public string? TraceParent { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    public DateTimeOffset? DeliveredAt { get; set; }
    public DateTimeOffset? AckedAt { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
}

/// <summary>The append-only event log. <see cref="Id"/> is the public sequence (SSE <c>id:</c>).</summary>
public sealed class Event
{
    public long Id { get; set; }
    /// <summary>Runner that produced it, or null for events Web writes itself (the user's prompt).</summary>
    public string? RunnerId { get; set; }
    /// <summary>Per-runner sequence; (RunnerId, Seq) is unique, which makes intake idempotent.</summary>
    public long? Seq { get; set; }
    public Guid? ProjectId { get; set; }
    public required string Type { get; set; }
    /// <summary>The <see cref="ProjectEvent"/> as JSON (jsonb), including its type.</summary>
    public required string Payload { get; set; }
    public DateTimeOffset Timestamp { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

public sealed class Checkpoint
{
    public required string Id { get; set; }
    public Guid ProjectId { get; set; }
    public required string Message { get; set; }
    public int? Turn { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}
