// The runner as a user installs it (README, "The runner CLI"): `dotnet pack Runner`, `dotnet tool install
// --add-source`, then the installed `sentryvibe-runner` against a real broker and Postgres.
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using SentryVibe.Protocol;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Link;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class RunnerToolTests(BrokerEnvironment environment, ITestOutputHelper output) : IClassFixture<BrokerEnvironment>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _db = environment.Db;

    [Fact]
    public async Task The_packed_runner_installs_as_a_dotnet_tool_and_its_version_status_and_linked_run_work_from_the_tool_folder()
    {
        var clock = Stopwatch.StartNew();
        var root = Paths.TempDirectory("tool");
        try
        {
            // Pack the Runner the test project has already built (it is a project reference), as `dotnet pack Runner` does.
            var nupkgs = Path.Combine(root, "nupkgs");
            var pack = await DotnetAsync(root, ["pack", Path.Combine(Paths.RepoRoot, "Runner", "SentryVibe.Runner.csproj"),
                "--no-build", "-c", Paths.Configuration, "-o", nupkgs]);
            Assert.True(pack.ExitCode == 0, "dotnet pack Runner failed:\n" + pack.Output);
            var version = LinkClient.RunnerVersion;
            Assert.True(File.Exists(Path.Combine(nupkgs, $"sentryvibe-runner.{version}.nupkg")),
                $"no sentryvibe-runner.{version}.nupkg in {string.Join(", ", Directory.GetFiles(nupkgs).Select(Path.GetFileName))}");
            output.WriteLine($"packed in {clock.Elapsed.TotalSeconds:F1} s");

            // Install from that folder only: a nuget.config without sources keeps nuget.org (and the network) out.
            var tools = Path.Combine(root, "tools");
            await File.WriteAllTextAsync(Path.Combine(root, "nuget.config"),
                """<?xml version="1.0" encoding="utf-8"?><configuration><packageSources><clear /></packageSources></configuration>""");
            var install = await DotnetAsync(root, ["tool", "install", "sentryvibe-runner", "--tool-path", tools, "--add-source", nupkgs,
                "--configfile", Path.Combine(root, "nuget.config"), "--version", version]);
            Assert.True(install.ExitCode == 0, "dotnet tool install failed:\n" + install.Output);
            var tool = Path.Combine(tools, OperatingSystem.IsWindows() ? "sentryvibe-runner.exe" : "sentryvibe-runner");
            output.WriteLine($"installed at {clock.Elapsed.TotalSeconds:F1} s");

            var shown = await RunAsync(tool, ["--version"], root, new Dictionary<string, string>());
            Assert.Equal(0, shown.ExitCode);
            Assert.StartsWith(version, shown.Output.Trim());

            var home = Path.Combine(root, "home");
            var env = new Dictionary<string, string> { ["SENTRYVIBE_HOME"] = home, ["DOTNET_gcServer"] = "0", ["HEALTH_PORT"] = "0" };
            var idle = await RunAsync(tool, ["status"], root, env);
            Assert.True(idle.ExitCode == 3, $"status before run exited {idle.ExitCode}:\n{idle.Output}");
            Assert.Contains("not running", idle.Output);

            // A linked run with a runner token bound to its id, as Web makes them.
            var runnerId = "tool-" + Guid.NewGuid().ToString("N")[..6];
            var (_, token) = await Tokens.CreateAsync(_db, runnerId);
            await using var runner = ToolProcess.Start(tool,
                ["run", "--broker", environment.Broker.LinkUri.ToString(), "--token", token, "--id", runnerId, "--workspace", Path.Combine(home, "ws")],
                root, env);
            await UntilAsync(runner, async () => runner.HasExited
                    ? throw new InvalidOperationException($"the runner exited ({runner.ExitCode})")
                    : await Database.RunnerStatusAsync(_db, runnerId) == "online",
                "the broker to see the installed runner online");
            output.WriteLine($"online at {clock.Elapsed.TotalSeconds:F1} s");

            // The status file is rewritten every two seconds, so it may still say how the link was a moment ago.
            RunnerStatusFile? status = null;
            await UntilAsync(runner, async () =>
            {
                var live = await RunAsync(tool, ["status", "--json"], root, env);
                Assert.True(live.ExitCode == 0, $"status during run exited {live.ExitCode}:\n{live.Output}");
                using var document = JsonDocument.Parse(live.Output);
                status = Assert.Single(document.RootElement.GetProperty("runners").EnumerateArray()).Deserialize<RunnerStatusFile>(RunnerStatusFile.Json)!;
                return status.State == LinkStates.Connected;
            }, "status to show the link connected", TimeSpan.FromMilliseconds(250));
            Assert.Equal(runnerId, status!.RunnerId);
            Assert.Equal(runner.ProcessId, status.Pid);

            // Every built-in template scaffolds from the installed tool's folder (agent none: the template only).
            var builds = new List<(string Template, Guid Project, string Slug)>();
            foreach (var template in TemplateCatalog.BuiltIn.Select(t => t.Id))
            {
                var (project, preview) = await Projects.CreateAsync(_db, runnerId);
                var slug = await Database.ScalarAsync<string>(_db, """SELECT "Slug" FROM projects WHERE "Id" = @id""", ("id", project));
                await Database.QueueCommandAsync(_db, runnerId,
                    new StartBuild(project, slug!, "Scaffold only", template, Protocol.Agents.None, PreviewId: preview, StartDevServerWhenReady: false));
                builds.Add((template, project, slug!));
            }
            foreach (var (template, project, slug) in builds)
            {
                await UntilAsync(runner, async () =>
                        await Database.ScalarAsync<string>(_db, """SELECT "Status" FROM projects WHERE "Id" = @id""", ("id", project)) == ProjectStatuses.Ready,
                    $"the {template} build to be ready");
                var source = Path.Combine(Paths.RepoRoot, "Runner", "Templates", template);
                var files = Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(source, f))
                    .Where(f => !f.Split(Path.DirectorySeparatorChar).Contains("node_modules") && f is not "template.json" and not "package-lock.json")
                    .ToList();
                Assert.NotEmpty(files);
                foreach (var file in files)
                {
                    var copy = Path.Combine(home, "ws", slug, file);
                    Assert.True(File.Exists(copy), $"{template}: {file} was not scaffolded");
                    Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(source, file)), await File.ReadAllBytesAsync(copy));
                }
            }
            output.WriteLine($"{builds.Count} templates scaffolded at {clock.Elapsed.TotalSeconds:F1} s");

            // Ctrl+C: the runner ends cleanly, the broker marks it offline, status says it is not running.
            Assert.True(ProcessTable.Signal(runner.ProcessId, ProcessTable.SigInt), "could not signal the runner");
            await Eventually.WaitAsync(() => runner.HasExited, Wait, "the runner to exit after Ctrl+C", () => runner.Output);
            Assert.True(runner.ExitCode == 0, $"the runner exited {runner.ExitCode}:\n{runner.Output}");
            await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, runnerId) == "offline", Wait, "the broker to see the runner offline");
            var stopped = await RunAsync(tool, ["status"], root, env);
            Assert.True(stopped.ExitCode == 3, $"status after run exited {stopped.ExitCode}:\n{stopped.Output}");
            output.WriteLine($"done in {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static async Task UntilAsync(ChildProcess runner, Func<Task<bool>> probe, string what, TimeSpan? interval = null)
    {
        try
        {
            await Eventually.WaitAsync(probe, Wait, what, interval);
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\nThe runner said:\n{runner.Output}");
        }
    }

    /// <summary>The dotnet CLI with an isolated package cache, so an earlier install of the same version cannot stand in.</summary>
    private Task<(int ExitCode, string Output)> DotnetAsync(string root, string[] arguments) =>
        RunAsync(DotnetHost, arguments, root, new Dictionary<string, string>
        {
            ["NUGET_PACKAGES"] = Path.Combine(root, "packages"),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        }, TimeSpan.FromMinutes(3));

    private static string DotnetHost =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path
        : "dotnet";

    private async Task<(int ExitCode, string Output)> RunAsync(string file, string[] arguments, string directory, IDictionary<string, string> environment,
        TimeSpan? timeout = null)
    {
        var psi = ToolProcess.StartInfo(file, arguments, directory, environment);
        var text = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout ?? Wait);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish:\n{text}");
        }
        process.WaitForExit(); // drains the output
        var result = text.ToString();
        output.WriteLine($"$ {Path.GetFileName(file)} {string.Join(' ', arguments)} → {process.ExitCode}\n{result.TrimEnd()}");
        return (process.ExitCode, result);
    }
}

/// <summary>The installed tool's command, run as a user's shell would: its own working folder, the dotnet it was installed with.</summary>
public sealed class ToolProcess : ChildProcess
{
    private ToolProcess() : base("sentryvibe-runner (tool)") { }

    public static ToolProcess Start(string tool, string[] arguments, string directory, IDictionary<string, string> environment)
    {
        var process = new ToolProcess();
        process.Start(StartInfo(tool, arguments, directory, environment));
        return process;
    }

    public static ProcessStartInfo StartInfo(string file, IEnumerable<string> arguments, string directory, IDictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory,
        };
        foreach (var a in arguments) psi.ArgumentList.Add(a);
        // The test host runs under `dotnet test`, whose MSBuild settings would steer a nested dotnet pack.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList()) psi.Environment.Remove(key);
        // The tool's launcher finds the runtime through DOTNET_ROOT, as after a user's own SDK install.
        if (Environment.GetEnvironmentVariable("DOTNET_ROOT") is null && Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host)
        {
            psi.Environment["DOTNET_ROOT"] = Path.GetDirectoryName(host);
        }
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        return psi;
    }
}
