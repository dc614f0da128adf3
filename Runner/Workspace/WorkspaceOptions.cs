namespace SentryVibe.Runner.Workspace;

/// <summary>
/// Where projects live. Bound from the "Workspace" section; the seed's <c>WORKSPACE_ROOT</c> and
/// <c>SENTRYVIBE_HOME</c> still work (applied in <see cref="Build.BuildServiceCollectionExtensions"/>).
/// </summary>
public sealed class WorkspaceOptions
{
    public const string Section = "Workspace";

    /// <summary>Folder holding one folder per project slug. Default <c>~/sentryvibe-workspace</c>.</summary>
    public string? Root { get; set; }

    /// <summary>The runner's own state (project index). Default <c>~/.sentryvibe</c>.</summary>
    public string? Home { get; set; }

    public string ResolvedRoot => Path.GetFullPath(ExpandHome(string.IsNullOrWhiteSpace(Root) ? "~/sentryvibe-workspace" : Root));

    public string ResolvedHome => Path.GetFullPath(ExpandHome(string.IsNullOrWhiteSpace(Home) ? "~/.sentryvibe" : Home));

    private static string ExpandHome(string path) =>
        path == "~" || path.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path.Length > 1 ? path[2..] : "")
            : path;
}
