using System.CommandLine;

namespace SentryVibe.Runner.Verbs;

/// <summary>The <c>sentryvibe-runner</c> command line: run, login, status.</summary>
public static class RunnerCli
{
    public static RootCommand Create() => new("SentryVibe runner: builds and serves AI-generated apps on this machine.")
    {
        RunCommand.Create(),
        LoginCommand.Create(),
        StatusCommand.Create(),
    };

    internal static Option<bool> JsonOption() => new("--json") { Description = "Machine-readable output (JSON) instead of text." };
}
