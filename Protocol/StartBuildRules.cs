namespace SentryVibe.Protocol;

/// <summary>
/// What a build request is told when its prompt, template or agent is wrong, declared once: Web answers it as a
/// problem+json field error on <c>POST /api/projects</c>, the runner as a refused CommandAck on <see cref="StartBuild"/>
/// (see docs/runner-protocol.md). The template URL's syntax rule is <see cref="TemplateSources.Problem"/>.
/// </summary>
public static class StartBuildRules
{
    public const string EmptyPrompt = "The prompt is empty.";

    /// <summary><see cref="EmptyPrompt"/> for a blank prompt, else null.</summary>
    public static string? PromptProblem(string? prompt) => string.IsNullOrWhiteSpace(prompt) ? EmptyPrompt : null;

    public static string UnknownTemplate(string? templateId) =>
        $"Unknown template '{templateId}'. Known templates: {string.Join(", ", TemplateCatalog.BuiltIn.Select(t => t.Id))}.";

    /// <summary>Why an agent name is refused; <paramref name="known"/> is what the asking side can run.</summary>
    public static string UnknownAgent(string? agent, IEnumerable<string> known) =>
        $"Unknown agent '{agent}'. Known agents: {string.Join(", ", known)}.";
}
