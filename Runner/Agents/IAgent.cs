using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Agents;

/// <summary>Everything a turn needs besides the prompt. Events go to <see cref="Events"/> for <see cref="ProjectId"/>.</summary>
public sealed record AgentTurnContext(
    Guid ProjectId,
    string ProjectPath,
    TemplateManifest Template,
    IEventSink Events,
    string Instructions);

/// <summary>How a turn ended. Cost and tokens are for this turn only.</summary>
public sealed record AgentTurnResult(
    bool Success,
    string? SessionId,
    decimal CostUsd = 0,
    long InputTokens = 0,
    long OutputTokens = 0,
    int Turns = 0,
    string? Error = null,
    IReadOnlyList<TodoItem>? Todos = null)
{
    public IReadOnlyList<TodoItem> OpenTodos =>
        (Todos ?? []).Where(t => t.Status != TodoStatuses.Completed).ToList();

    public static AgentTurnResult Failed(string error, string? sessionId = null) => new(false, sessionId, Error: error);
}

/// <summary>
/// One coding agent. A turn runs the agent on a prompt in the project folder, reports what it does as typed
/// events, and returns when the agent is done. Cancelling the token stops the agent (its whole process tree).
/// </summary>
public interface IAgent
{
    /// <summary>The name used in commands: claude-code, codex, anthropic, none.</summary>
    string Name { get; }

    /// <summary>Null when the agent can run here, else why not (for the user).</summary>
    string? Unavailable();

    /// <summary>
    /// Null when the agent's shell commands can write only inside the project folder here; else why not, which the
    /// build log shows as "agent not sandboxed: …" at every turn.
    /// </summary>
    string? NotSandboxed() => null;

    Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken);
}
