using System.Text;
using CliWrap;
using Xunit.Abstractions;

namespace SentryVibe.Extension.Tests;

/// <summary>
/// VS Code cannot run here, so the extension is checked the way CI can: its own node test suite (which covers the
/// vscode-free modules, and the client against a live Web when SENTRYVIBE_WEB_URL/SENTRYVIBE_API_TOKEN are set)
/// and a real <c>vsce package</c>.
/// </summary>
public sealed class ExtensionTests(ITestOutputHelper output)
{
    private static readonly string[] PassedThrough = ["SENTRYVIBE_WEB_URL", "SENTRYVIBE_API_TOKEN"];

    [Fact]
    public async Task Extension_builds_tests_and_packages()
    {
        var dir = Path.Combine(RepoRoot(), "vscode-extension");
        var vsix = Path.Combine(dir, "sentryvibe.vsix");
        if (File.Exists(vsix)) File.Delete(vsix);

        await Npm(dir, ["ci", "--no-audit", "--no-fund"], TimeSpan.FromMinutes(8));
        await Npm(dir, ["test"], TimeSpan.FromMinutes(5));
        await Npm(dir, ["run", "package"], TimeSpan.FromMinutes(3));

        Assert.True(File.Exists(vsix), $"{vsix} was not produced");
        Assert.True(new FileInfo(vsix).Length > 1024, "the .vsix is suspiciously small");
    }

    private async Task Npm(string workingDirectory, string[] args, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var log = new StringBuilder();
        var env = new Dictionary<string, string?>();
        foreach (var name in PassedThrough)
        {
            if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value) env[name] = value;
        }

        var result = await Cli.Wrap(OperatingSystem.IsWindows() ? "npm.cmd" : "npm")
            .WithArguments(a => a.Add(args))
            .WithWorkingDirectory(workingDirectory)
            .WithEnvironmentVariables(env)
            .WithStandardOutputPipe(PipeTarget.ToStringBuilder(log))
            .WithStandardErrorPipe(PipeTarget.ToStringBuilder(log))
            .WithValidation(CommandResultValidation.None)
            .ExecuteAsync(cts.Token);

        output.WriteLine($"$ npm {string.Join(' ', args)} (exit {result.ExitCode}, {result.RunTime.TotalSeconds:F1} s)");
        output.WriteLine(log.ToString());
        Assert.True(result.ExitCode == 0, $"npm {string.Join(' ', args)} exited with {result.ExitCode}:\n{Tail(log.ToString(), 4000)}");
    }

    private static string Tail(string text, int chars) => text.Length <= chars ? text : text[^chars..];

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SentryVibe.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"SentryVibe.sln not found above {AppContext.BaseDirectory}");
    }
}
