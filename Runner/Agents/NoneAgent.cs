using SentryVibe.Protocol;

namespace SentryVibe.Runner.Agents;

/// <summary>Scaffolds the template only: the turn does nothing and succeeds.</summary>
public sealed class NoneAgent : IAgent
{
    public string Name => Protocol.Agents.None;

    public string? Unavailable() => null;

    public async Task<AgentTurnResult> RunTurnAsync(AgentTurnContext context, string prompt, string? sessionId, CancellationToken cancellationToken)
    {
        await context.Events.PublishAsync(context.ProjectId, new BuildLog("No agent: the project is the template as scaffolded."), cancellationToken);
        return new AgentTurnResult(true, sessionId);
    }
}
