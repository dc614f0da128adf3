namespace SentryVibe.Runner.Build;

/// <summary>Build orchestration settings (section "Build").</summary>
public sealed class BuildOptions
{
    public const string Section = "Build";

    /// <summary>Builds running at once; further builds wait in a queue and report their position.</summary>
    public int MaxConcurrentBuilds { get; set; } = 2;

    /// <summary>Extra turns started automatically when a turn ends with open todos.</summary>
    public int MaxAutoResumes { get; set; } = 3;

    /// <summary>Runs the template's build command after the agent (only when node_modules exists) and gives the agent one turn to fix errors.</summary>
    public bool VerifyBuild { get; set; } = true;

    public TimeSpan VerifyTimeout { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>Where the built-in template trees are. Default: the Templates folder beside the runner.</summary>
    public string? TemplatesPath { get; set; }

    public string ResolvedTemplatesPath => TemplatesPath ?? Path.Join(AppContext.BaseDirectory, "Templates");
}
