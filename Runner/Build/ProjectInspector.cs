using System.Text.Json;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Build;

/// <summary>Reads what a project folder says about itself: framework, run command and port (package.json first, manifest second).</summary>
public static class ProjectInspector
{
    public static ProjectMetadata Metadata(string projectPath, TemplateManifest manifest, string? sessionId) =>
        new(
            Framework: DetectFramework(projectPath) ?? manifest.Framework,
            RunCommand: PackageJson.RunCommand(projectPath) ?? manifest.RunCommand,
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
        var scripts = PackageJson.Scripts(projectPath);
        return new TemplateManifest(
            Id: id,
            Name: Path.GetFileName(projectPath),
            Description: "Template from a git repository",
            Framework: framework,
            RunCommand: PackageJson.RunCommand(projectPath) ?? "npm run dev",
            DefaultPort: port,
            Keywords: [],
            PortArgument: portArgument,
            InstallCommand: File.Exists(Path.Join(projectPath, "package.json")) ? $"{PackageJson.PackageManager(projectPath)} install" : null,
            BuildCommand: scripts.ContainsKey("build") ? $"{PackageJson.PackageManager(projectPath)} run build" : null);
    }

    public static string? DetectFramework(string projectPath)
    {
        var deps = PackageJson.Dependencies(projectPath);
        return deps.Contains("next") ? "next"
            : deps.Contains("astro") ? "astro"
            : deps.Contains("@remix-run/dev") ? "remix"
            : deps.Contains("@sveltejs/kit") ? "sveltekit"
            : deps.Contains("vite") ? "vite"
            : null;
    }
}
