// What a project's package.json says about running it, read in one place for the build (metadata, inferred
// manifests, the agent's instructions) and the dev servers (a project whose location names no run command).
using System.Text.Json;

namespace SentryVibe.Runner.Core;

public static class PackageJson
{
    /// <summary>"&lt;pm&gt; run dev" when there is a dev script, else "&lt;pm&gt; start" for a start script, else null.</summary>
    public static string? RunCommand(string projectPath)
    {
        var scripts = Scripts(projectPath);
        var pm = PackageManager(projectPath);
        return scripts.ContainsKey("dev") ? $"{pm} run dev"
            : scripts.ContainsKey("start") ? $"{pm} start"
            : null;
    }

    /// <summary>The package manager the project's lockfile names: pnpm, yarn or bun, else npm.</summary>
    public static string PackageManager(string projectPath) =>
        File.Exists(Path.Join(projectPath, "pnpm-lock.yaml")) ? "pnpm"
        : File.Exists(Path.Join(projectPath, "yarn.lock")) ? "yarn"
        : File.Exists(Path.Join(projectPath, "bun.lockb")) || File.Exists(Path.Join(projectPath, "bun.lock")) ? "bun"
        : "npm";

    public static Dictionary<string, string> Scripts(string projectPath) =>
        Read(projectPath, root =>
            root.TryGetProperty("scripts", out var s) && s.ValueKind == JsonValueKind.Object
                ? s.EnumerateObject().Where(p => p.Value.ValueKind == JsonValueKind.String).ToDictionary(p => p.Name, p => p.Value.GetString()!)
                : []) ?? [];

    /// <summary>The names in dependencies and devDependencies.</summary>
    public static HashSet<string> Dependencies(string projectPath) =>
        Read(projectPath, root =>
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

    private static T? Read<T>(string projectPath, Func<JsonElement, T> read)
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
