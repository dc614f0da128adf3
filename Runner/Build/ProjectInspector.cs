using System.Text.Json;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Build;

/// <summary>Reads what a project folder says about itself: framework, run command and port (package.json first, manifest second).</summary>
public static class ProjectInspector
{
    public static ProjectMetadata Metadata(string projectPath, TemplateManifest manifest, string? sessionId) =>
        new(
            Framework: DetectFramework(projectPath) ?? manifest.Framework,
            RunCommand: DetectRunCommand(projectPath) ?? manifest.RunCommand,
            Port: manifest.DefaultPort,
            Path: projectPath,
            TemplateId: manifest.Id,
            SessionId: sessionId);

    /// <summary>A manifest for a project that came from a git URL: its own template.json, else inferred from package.json.</summary>
    public static TemplateManifest InferManifest(string projectPath, string id)
    {
        var own = Path.Join(projectPath, "template.json");
        if (File.Exists(own))
        {
            try
            {
                if (JsonSerializer.Deserialize<TemplateManifest>(File.ReadAllText(own), LinkProtocol.JsonOptions) is { } m && !string.IsNullOrWhiteSpace(m.RunCommand))
                {
                    return m with { Id = id, Keywords = m.Keywords ?? [] };
                }
            }
            catch (JsonException)
            {
                // Not a SentryVibe manifest; infer below.
            }
        }
        var framework = DetectFramework(projectPath) ?? "node";
        var (port, portArgument) = framework switch
        {
            "next" => (3000, "-- --port {port} --hostname 127.0.0.1"),
            "astro" => (4321, "-- --port {port} --host 127.0.0.1"),
            "vite" => (5173, "-- --port {port} --strictPort --host 127.0.0.1"),
            _ => (3000, (string?)null),
        };
        var scripts = Scripts(projectPath);
        return new TemplateManifest(
            Id: id,
            Name: Path.GetFileName(projectPath),
            Description: "Template from a git repository",
            Framework: framework,
            RunCommand: DetectRunCommand(projectPath) ?? "npm run dev",
            DefaultPort: port,
            Keywords: [],
            PortArgument: portArgument,
            InstallCommand: File.Exists(Path.Join(projectPath, "package.json")) ? $"{PackageManager(projectPath)} install" : null,
            BuildCommand: scripts.ContainsKey("build") ? $"{PackageManager(projectPath)} run build" : null);
    }

    public static string? DetectFramework(string projectPath)
    {
        var deps = Dependencies(projectPath);
        return deps.Contains("next") ? "next"
            : deps.Contains("astro") ? "astro"
            : deps.Contains("@remix-run/dev") ? "remix"
            : deps.Contains("@sveltejs/kit") ? "sveltekit"
            : deps.Contains("vite") ? "vite"
            : null;
    }

    public static string? DetectRunCommand(string projectPath)
    {
        var scripts = Scripts(projectPath);
        var pm = PackageManager(projectPath);
        return scripts.ContainsKey("dev") ? $"{pm} run dev"
            : scripts.ContainsKey("start") ? $"{pm} start"
            : null;
    }

    public static string PackageManager(string projectPath) =>
        File.Exists(Path.Join(projectPath, "pnpm-lock.yaml")) ? "pnpm"
        : File.Exists(Path.Join(projectPath, "yarn.lock")) ? "yarn"
        : File.Exists(Path.Join(projectPath, "bun.lockb")) || File.Exists(Path.Join(projectPath, "bun.lock")) ? "bun"
        : "npm";

    private static Dictionary<string, string> Scripts(string projectPath) =>
        ReadPackageJson(projectPath, root =>
            root.TryGetProperty("scripts", out var s) && s.ValueKind == JsonValueKind.Object
                ? s.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String).ToDictionary(p => p.Name, p => p.Value.GetString()!)
                : []) ?? [];

    private static HashSet<string> Dependencies(string projectPath) =>
        ReadPackageJson(projectPath, root =>
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var section in new[] { "dependencies", "devDependencies" })
            {
                if (root.TryGetProperty(section, out var deps) && deps.ValueKind == JsonValueKind.Object)
                {
                    names.UnionWith(deps.EnumerateObject().Select(p => p.Name));
                }
            }
            return names;
        }) ?? [];

    private static T? ReadPackageJson<T>(string projectPath, Func<JsonElement, T> read)
        where T : class
    {
        var file = Path.Join(projectPath, "package.json");
        if (!File.Exists(file))
        {
            return null;
        }
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(file), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return document.RootElement.ValueKind == JsonValueKind.Object ? read(document.RootElement) : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
