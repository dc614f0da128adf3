using Microsoft.Extensions.Options;

namespace SentryVibe.Runner.Agents;

/// <summary>The agent chosen for a build.</summary>
/// <param name="Notice">Why a different agent than asked for is used (shown to the user as a build log line).</param>
public sealed record AgentChoice(IAgent Agent, string? Notice = null);

/// <summary>The agents of this runner by name, and the default rule: claude-code when installed, else none.</summary>
public sealed class AgentCatalog(IEnumerable<IAgent> agents, IOptions<AgentOptions> options)
{
    private readonly Dictionary<string, IAgent> _byName = agents.ToDictionary(a => a.Name, StringComparer.OrdinalIgnoreCase);

    public IReadOnlyCollection<string> Names => _byName.Keys;

    /// <summary>The agents that can run here now (for the runner's hello).</summary>
    public IReadOnlyList<string> Available() => _byName.Values.Where(a => a.Unavailable() is null).Select(a => a.Name).ToList();

    public IAgent? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>
    /// Resolves the requested agent. An empty name or an alias of the default (Protocol's StartBuildRules) takes the configured default or the default rule.
    /// A CLI agent that is not installed falls back to none with a notice; an unknown name is an error.
    /// </summary>
    public AgentChoice Choose(string? requested)
    {
        var name = Protocol.StartBuildRules.AgentName(requested) ?? options.Value.Default ?? Protocol.Agents.ClaudeCode;
        if (!_byName.TryGetValue(name, out var agent))
        {
            throw new ArgumentException(Protocol.StartBuildRules.UnknownAgent(requested, _byName.Keys));
        }
        if (agent.Unavailable() is { } why)
        {
            if (agent.Name is Protocol.Agents.ClaudeCode or Protocol.Agents.Codex)
            {
                return new AgentChoice(_byName[Protocol.Agents.None], $"{why} Scaffolding the template only (agent: none).");
            }
            throw new ArgumentException(why);
        }
        return new AgentChoice(agent);
    }
}
