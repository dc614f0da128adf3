using System.Text.Json;

namespace SentryVibe.Protocol;

/// <summary>
/// A built-in template's manifest: <c>Protocol/Templates/&lt;id&gt;.json</c>, the catalogue Web serves and both sides
/// validate against; the template's file tree is the Runner's (<c>Runner/Templates/&lt;id&gt;</c>). A project from a git
/// URL may carry its own <c>template.json</c> of the same shape.
/// </summary>
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
            if (name != $"templates/{manifest.Id}.json")
            {
                throw new InvalidDataException($"Template manifest {name} declares id '{manifest.Id}'; a manifest is named after its id.");
            }
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

/// <summary>A template given as a git repository instead of a built-in id: the rule both Web and Runner apply.</summary>
public static class TemplateSources
{
    public const int MaxUrlLength = 2048;

    /// <summary>
    /// Null when <paramref name="url"/> names a git repository (https://, http://, git://, ssh://, git@host:path,
    /// file:// or an absolute path); else why not. Syntax only: whether a path exists is the runner's to say.
    /// </summary>
    public static string? Problem(string? url)
    {
        var trimmed = url?.Trim() ?? "";
        if (trimmed.Length == 0) return "The template URL is empty.";
        if (trimmed.Length > MaxUrlLength) return $"The template URL is longer than {MaxUrlLength} characters.";
        if (trimmed.Any(char.IsControl)) return "The template URL contains control characters.";
        if (Uri.TryCreate(trimmed, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" or "git" or "ssh" or "file") return null;
        if (System.Text.RegularExpressions.Regex.IsMatch(trimmed, @"^[\w.-]+@[\w.-]+:.+$")) return null; // git@github.com:owner/repo.git
        if (trimmed.StartsWith('/') || (trimmed.Length > 2 && char.IsLetter(trimmed[0]) && trimmed[1] == ':' && trimmed[2] is '\\' or '/')) return null;
        return $"'{trimmed}' is not a git URL (https://, ssh://, git@host:path, file://) or an absolute path.";
    }
}
