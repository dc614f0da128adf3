using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using SentryVibe.Protocol;
using SentryVibe.Runner.DevServers;
using SentryVibe.Testing;
using Xunit.Abstractions;
using static SentryVibe.Testing.ScriptedBlock;
using AgentNames = SentryVibe.Protocol.Agents;

namespace SentryVibe.Runner.Tests;

/// <summary>
/// What the runner keeps under SENTRYVIBE_HOME is its owner's alone: folders 0700, files 0600, whatever the umask
/// (docs/security.md). The umask is per process, so the umask-000 case runs the real runner as a child process.
/// </summary>
public sealed class OwnerOnlyFilesTests(ITestOutputHelper output)
{
    private const UnixFileMode GroupOrOtherReadWrite =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    [Fact]
    public async Task Everything_the_runner_keeps_under_its_home_is_owner_only_even_with_umask_000()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var sandbox = Directory.CreateTempSubdirectory("sv-umask-").FullName;
        var home = Path.Join(sandbox, "home");
        // A home an older version (or a umask of 000) left open to everyone.
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(home, (UnixFileMode)0b111_111_111);
        Process? run = null;
        try
        {
            var broker = $"ws://127.0.0.1:{ClosedPort()}/runner";
            var login = StartRunner(sandbox, home, "login", "--broker", broker, "--token", "umask-token", "--id", "umask-runner");
            Assert.True(login.WaitForExit(TimeSpan.FromSeconds(60)), "login did not finish");
            Assert.Equal(0, login.ExitCode);

            run = StartRunner(sandbox, home, "run");
            var state = Path.Join(home, "runners", "umask-runner");
            await Eventually.WaitAsync(
                () => File.Exists(Path.Join(state, "status.json")) && File.Exists(Path.Join(state, "commands.journal")) && Directory.Exists(Path.Join(state, "outbox")),
                TimeSpan.FromSeconds(60), "the runner wrote its status, journal and outbox");
            // The status says whether agents are confined here (what `sentryvibe-runner status` shows).
            var status = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Join(state, "status.json")));
            var sandboxLine = status.RootElement.GetProperty("sandbox").GetString();
            output.WriteLine($"status.json sandbox: {sandboxLine}");
            Assert.Matches("^(agent sandbox: on|agent not sandboxed: .+)", sandboxLine);
        }
        finally
        {
            if (run is not null)
            {
                run.Kill(entireProcessTree: true);
                await run.WaitForExitAsync();
            }
        }

        try
        {
            var entries = Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories).Where(p => !p.EndsWith(".tmp", StringComparison.Ordinal)).ToList();
            foreach (var entry in entries.Prepend(home))
            {
                output.WriteLine($"{Convert.ToString((int)File.GetUnixFileMode(entry), 8),4} {Path.GetRelativePath(sandbox, entry)}");
            }
            Assert.Contains(entries, e => e.EndsWith("runner.json", StringComparison.Ordinal));
            Assert.Contains(entries, e => e.EndsWith(".seg", StringComparison.Ordinal) || e.EndsWith("outbox", StringComparison.Ordinal));
            // The home an older version left open is tightened: nobody else may list or change it.
            Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(home) & GroupOrOtherReadWrite);
            AssertOwnerOnly(entries);
        }
        finally
        {
            Directory.Delete(sandbox, recursive: true);
        }
    }

    [Fact]
    public async Task Project_state_build_marks_and_agent_sessions_are_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        await using var model = await ScriptedAnthropicServer.StartAsync();
        await using var runner = RunnerHarness.Create(new Dictionary<string, string?>
        {
            ["Agents:AnthropicBaseUrl"] = model.BaseUrl,
            ["Agents:AnthropicApiKey"] = "sk-test",
        });
        var command = new StartBuild(Guid.NewGuid(), "owner-only", "Create a React todo app", "vite-react", AgentNames.Anthropic, StartDevServerWhenReady: false);
        model.Enqueue(ToolUse("write_file", new { path = "note.txt", content = "hi" })).EnqueueText("Done.");

        await runner.AcceptAsync(command);
        Assert.IsType<BuildCompleted>((await runner.Events.WaitForEndAsync(command.ProjectId, TimeSpan.FromSeconds(60)))[^1]);

        var entries = Directory.EnumerateFileSystemEntries(runner.Home, "*", SearchOption.AllDirectories)
            .Where(p => !Path.GetRelativePath(runner.Home, p).StartsWith("claude-config", StringComparison.Ordinal)) // the test's own CLI config
            .ToList();
        foreach (var entry in entries)
        {
            output.WriteLine($"{Convert.ToString((int)File.GetUnixFileMode(entry), 8),4} {Path.GetRelativePath(runner.Home, entry)}");
        }
        Assert.Contains(entries, e => Path.GetFileName(Path.GetDirectoryName(e)) == "sessions");
        Assert.Contains(entries, e => Path.GetFileName(Path.GetDirectoryName(e)) == "projects");
        AssertOwnerOnly(entries.Prepend(runner.Home));
    }

    [Fact]
    public async Task An_install_cache_entry_is_owner_only()
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var sandbox = Directory.CreateTempSubdirectory("sv-cache-").FullName;
        InstallCache? cache = null;
        try
        {
            var project = Path.Join(sandbox, "project");
            Directory.CreateDirectory(Path.Join(project, "node_modules", "dep"));
            File.WriteAllText(Path.Join(project, "node_modules", "dep", "index.js"), "module.exports = 1\n");
            var root = Path.Join(sandbox, "home", "cache", "node_modules");

            cache = new InstallCache(root);
            cache.Store("entry", project);

            foreach (var folder in new[] { Path.Join(sandbox, "home", "cache"), root, Path.Join(root, "entry") })
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
            }
        }
        finally
        {
            // Storing starts the entry's spare copy in the background; deleting under it failed a CI run ("Directory not empty").
            if (cache is not null) await cache.SpareRefill("entry");
            Directory.Delete(sandbox, recursive: true);
        }
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void AssertOwnerOnly(IEnumerable<string> entries)
    {
        var loose = entries
            .Select(e => (Path: e, Mode: File.GetUnixFileMode(e), IsFolder: Directory.Exists(e)))
            .Where(e => (e.Mode & GroupOrOtherReadWrite) != 0 || (!e.IsFolder && (e.Mode & ~(UnixFileMode.UserRead | UnixFileMode.UserWrite)) != 0))
            .Select(e => $"{Convert.ToString((int)e.Mode, 8)} {e.Path}")
            .ToList();
        Assert.True(loose.Count == 0, "Not owner-only:\n" + string.Join("\n", loose));
    }

    /// <summary>Starts the real runner (this build's sentryvibe-runner.dll) under umask 000 with the given home.</summary>
    private static Process StartRunner(string sandbox, string home, params string[] args)
    {
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = false, RedirectStandardError = false };
        foreach (var a in new[] { "-c", "umask 000 && exec dotnet \"$@\"", "sh", Path.Join(AppContext.BaseDirectory, "sentryvibe-runner.dll") }.Concat(args))
        {
            start.ArgumentList.Add(a);
        }
        start.Environment["SENTRYVIBE_HOME"] = home;
        start.Environment["WORKSPACE_ROOT"] = Path.Join(sandbox, "workspace");
        start.Environment.Remove("RUNNER_BROKER_URL");
        start.Environment.Remove("RUNNER_SHARED_SECRET");
        start.Environment.Remove("RUNNER_ID");
        return Process.Start(start)!;
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
