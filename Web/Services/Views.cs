// The public JSON shapes of the API (README.md, the endpoints under "Web UI"); the UI binds to the same records.
using System.Text.Json;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Web.Services;

public sealed record DevServerView(
    string Status,
    int? Port,
    string? PreviewUrl,
    string? Provider,
    string? Reason,
    int? ExitCode,
    IReadOnlyList<string> LastLines);

public sealed record ProjectView(
    Guid Id,
    string Slug,
    string Name,
    string Prompt,
    string Status,
    string? StatusReason,
    string TemplateId,
    string? RunnerId,
    string Agent,
    string? Path,
    string? RunCommand,
    string? Framework,
    IReadOnlyList<TodoItem> Todos,
    DevServerView DevServer,
    string PreviewId,
    decimal CostUsd,
    int Turns,
    long LastEventId,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? DeleteRequestedAt)
{
    public static ProjectView From(Project p) => new(
        p.Id, p.Slug, p.Name, p.Prompt, p.Status, p.StatusReason, p.TemplateId, p.RunnerId, p.Agent, p.Path, p.RunCommand,
        p.Framework, p.Todos,
        new DevServerView(p.DevServer.Status, p.DevServer.Port, p.DevServer.PreviewUrl, p.DevServer.Provider,
            p.DevServer.Reason, p.DevServer.ExitCode, p.DevServer.LastLines),
        p.PreviewId, p.CostUsd, p.Turns, p.LastEventId, p.CreatedAt, p.UpdatedAt, p.DeleteRequestedAt);
}

/// <summary>One event of the log: <see cref="Id"/> is its public sequence, <see cref="Data"/> the typed body (with its <c>type</c>).</summary>
public sealed record EventView(long Id, string Type, Guid? ProjectId, DateTimeOffset Timestamp, JsonElement Data)
{
    public static EventView From(Event e)
    {
        using var doc = JsonDocument.Parse(e.Payload);
        return new EventView(e.Id, e.Type, e.ProjectId, e.Timestamp, doc.RootElement.Clone());
    }
}

public sealed record CheckpointView(string Id, string Message, DateTimeOffset CreatedAt, int? Turn);

/// <summary>Answer of every endpoint that queues work for a runner.</summary>
public sealed record CommandAccepted(Guid CommandId, Guid ProjectId, string Type, string RunnerId, long? EventId = null);

public sealed record TemplateView(string Id, string Name, string Description, string Framework);

public sealed record RunnerView(
    string Id,
    string? Name,
    string Status,
    DateTimeOffset? LastSeenAt,
    string? Version,
    string? Hostname,
    IReadOnlyList<string> Agents,
    string? PreviewProvider);

/// <summary><c>RunnerId</c>: the one id the token links as (null for a token made before ids were bound and not used since).</summary>
public sealed record RunnerTokenView(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt,
    string? RunnerId = null);

/// <summary>The only time a runner token is shown.</summary>
public sealed record CreatedRunnerToken(Guid Id, string Name, string Token, string Prefix, DateTimeOffset CreatedAt, string RunnerId);

/// <summary>POST /api/projects. <c>TemplateUrl</c> (a git repository) takes the place of a built-in <c>TemplateId</c>.</summary>
public sealed record CreateProjectRequest(string? Prompt, string? TemplateId = null, string? RunnerId = null, string? Agent = null, string? Name = null,
    string? TemplateUrl = null);

public sealed record SendMessageRequest(string? Prompt);

/// <summary>POST /api/runners/tokens. Without <c>RunnerId</c> the id is made from the name, unique among tokens and runners.</summary>
public sealed record CreateRunnerTokenRequest(string? Name, string? RunnerId = null);
