namespace SentryVibe.Protocol;

/// <summary>
/// The one check of a build request (prompt, template, template URL, agent), applied by Web on <c>POST /api/projects</c>
/// (each problem a problem+json field error) and by the runner on <see cref="StartBuild"/> (the first problem in a
/// refused CommandAck), so both sides accept and refuse the same requests with the same words (see
/// docs/runner-protocol.md). What only one side can know stays there: Web's prompt size limit and runners, the
/// runner's slug, folder and installed agents. The template URL's syntax rule is <see cref="TemplateSources.Problem"/>.
/// </summary>
public static class StartBuildRules
{
    public const string EmptyPrompt = "The prompt is empty.";

    public const string TemplateAndUrl = "Give either templateId or templateUrl, not both.";

    /// <summary>Agent names that ask for the default agent, as an absent or blank name does.</summary>
    public static IReadOnlyList<string> DefaultAgentAliases { get; } = ["default", "auto"];

    /// <summary><see cref="EmptyPrompt"/> for a blank prompt, else null.</summary>
    public static string? PromptProblem(string? prompt) => string.IsNullOrWhiteSpace(prompt) ? EmptyPrompt : null;

    public static string UnknownTemplate(string? templateId) =>
        $"Unknown template '{templateId}'. Known templates: {string.Join(", ", TemplateCatalog.BuiltIn.Select(t => t.Id))}.";

    /// <summary>Why an agent name is refused; <paramref name="known"/> is what the asking side can run.</summary>
    public static string UnknownAgent(string? agent, IEnumerable<string> known) =>
        $"Unknown agent '{agent}'. Known agents: {string.Join(", ", known)}.";

    /// <summary>
    /// The agent a request names: null for "the default" (absent, blank, or one of <see cref="DefaultAgentAliases"/>),
    /// else the name as <see cref="Agents"/> spells it when it is one of those in any case, else the name as given.
    /// </summary>
    public static string? AgentName(string? requested)
    {
        var name = requested?.Trim();
        if (string.IsNullOrEmpty(name) || DefaultAgentAliases.Contains(name, StringComparer.OrdinalIgnoreCase))
        {
            return null;
        }
        return Agents.All.FirstOrDefault(a => a.Equals(name, StringComparison.OrdinalIgnoreCase)) ?? name;
    }

    /// <summary>
    /// Checks a build request. A blank templateId or templateUrl counts as absent; with neither, the template is chosen
    /// from the prompt (<see cref="TemplateCatalog.Select"/>). <paramref name="knownAgents"/> defaults to
    /// <see cref="Agents.All"/>; names are matched in any case.
    /// </summary>
    public static StartBuildCheck Check(string? prompt, string? templateId, string? templateUrl, string? agent, IEnumerable<string>? knownAgents = null)
    {
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        if (PromptProblem(prompt) is { } promptProblem)
        {
            errors["prompt"] = promptProblem;
        }

        TemplateManifest? template = null;
        var id = string.IsNullOrWhiteSpace(templateId) ? null : templateId.Trim();
        if (id is not null && (template = TemplateCatalog.Find(id)) is null)
        {
            errors["templateId"] = UnknownTemplate(templateId);
        }
        var url = string.IsNullOrWhiteSpace(templateUrl) ? null : templateUrl.Trim();
        if (url is not null && TemplateSources.Problem(url) is { } urlProblem)
        {
            errors["templateUrl"] = urlProblem;
        }
        else if (url is not null && id is not null)
        {
            errors["templateUrl"] = TemplateAndUrl;
        }

        var agentName = AgentName(agent);
        var known = (knownAgents ?? Agents.All).ToList();
        if (agentName is not null && !known.Contains(agentName, StringComparer.OrdinalIgnoreCase))
        {
            errors["agent"] = UnknownAgent(agent, known);
        }

        if (errors.Count > 0)
        {
            return new StartBuildCheck(errors, null, null, null, null);
        }
        var trimmed = prompt!.Trim();
        return new StartBuildCheck(errors, trimmed, template ?? (url is null ? TemplateCatalog.Select(trimmed) : null), url, agentName);
    }
}

/// <summary>What <see cref="StartBuildRules.Check"/> found: the problems by field, or what the request asks for.</summary>
/// <param name="Errors">Field name (prompt, templateId, templateUrl, agent) → the message for the user; empty when valid.</param>
/// <param name="Prompt">The prompt, trimmed.</param>
/// <param name="Template">The built-in template asked for or chosen from the prompt; null for a git template.</param>
/// <param name="TemplateUrl">The git template's URL, trimmed; null for a built-in template.</param>
/// <param name="Agent">The agent asked for (see <see cref="StartBuildRules.AgentName"/>); null for the default.</param>
public sealed record StartBuildCheck(
    IReadOnlyDictionary<string, string> Errors,
    string? Prompt,
    TemplateManifest? Template,
    string? TemplateUrl,
    string? Agent)
{
    public bool IsValid => Errors.Count == 0;

    /// <summary>The first problem (prompt, then template, template URL, agent), or null.</summary>
    public string? FirstError => ((string[])["prompt", "templateId", "templateUrl", "agent"]).Select(Errors.GetValueOrDefault).FirstOrDefault(e => e is not null);
}
