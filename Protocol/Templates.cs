using System.Text.Json;

namespace SentryVibe.Protocol;

/// <summary>A template's manifest (<c>template.json</c> beside its source tree).</summary>
public sealed record TemplateManifest(
    string Id,
    string Name,
    string Description,
    string Framework,
    string RunCommand,
    int DefaultPort,
    IReadOnlyList<string> Keywords,
    string? PortArgument = null,
    string? InstallCommand = null,
    string? BuildCommand = null);

/// <summary>The built-in templates, read from the manifests embedded at build time, and the seed's selection rule.</summary>
public static class TemplateCatalog
{
    public const string DefaultTemplateId = "vite-react";

    public static IReadOnlyList<TemplateManifest> BuiltIn { get; } = Load();

    public static TemplateManifest? Find(string id) =>
        BuiltIn.FirstOrDefault(t => string.Equals(t.Id, id, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Explicit id first, else the template whose keywords best match the prompt, else <see cref="DefaultTemplateId"/>.
    /// </summary>
    public static TemplateManifest Select(string prompt, string? templateId = null)
    {
        if (!string.IsNullOrWhiteSpace(templateId))
        {
            return Find(templateId) ?? throw new ArgumentException($"Unknown template '{templateId}'.", nameof(templateId));
        }

        var words = Tokenize(prompt);
        var best = BuiltIn
            .Select(t => (Template: t, Score: t.Keywords.Sum(k => Score(words, prompt, k))))
            .Where(x => x.Score > 0)
            .OrderByDescending(x => x.Score)
            .FirstOrDefault();
        return best.Template ?? Find(DefaultTemplateId)!;
    }

    private static int Score(HashSet<string> words, string prompt, string keyword) =>
        keyword.Contains(' ') || keyword.Contains('.')
            ? (prompt.Contains(keyword, StringComparison.OrdinalIgnoreCase) ? 2 : 0)
            : (words.Contains(keyword.ToLowerInvariant()) ? 1 : 0);

    private static HashSet<string> Tokenize(string text) =>
        text.ToLowerInvariant()
            .Split([' ', '\t', '\n', '\r', ',', ';', ':', '!', '?', '(', ')', '"', '\'', '/'], StringSplitOptions.RemoveEmptyEntries)
            .Select(w => w.TrimEnd('.'))
            .ToHashSet();

    private static List<TemplateManifest> Load()
    {
        var assembly = typeof(TemplateCatalog).Assembly;
        var list = new List<TemplateManifest>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("templates/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            var manifest = JsonSerializer.Deserialize<TemplateManifest>(stream, LinkProtocol.JsonOptions)
                ?? throw new InvalidDataException($"Empty template manifest {name}.");
            list.Add(manifest);
        }
        return list.OrderBy(t => t.Id == DefaultTemplateId ? 0 : 1).ThenBy(t => t.Id, StringComparer.Ordinal).ToList();
    }
}

/// <summary>The agents a project can be built with.</summary>
public static class Agents
{
    public const string ClaudeCode = "claude-code";
    public const string Codex = "codex";
    public const string Anthropic = "anthropic";
    public const string None = "none";

    public static IReadOnlyList<string> All { get; } = [ClaudeCode, Codex, Anthropic, None];

    public static bool IsKnown(string agent) => All.Contains(agent);
}

public static class ProjectStatuses
{
    public const string Pending = "pending";
    public const string Building = "building";
    public const string Ready = "ready";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

public static class DevServerStatuses
{
    public const string Stopped = "stopped";
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Failed = "failed";
}
