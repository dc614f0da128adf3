using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Previews;

namespace SentryVibe.DevServer.Tests;

public sealed class DevServerManagerTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly TempFolder _folder = new();
    private DevServerHarness _harness = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        _folder.Dispose();
    }

    [Fact]
    public async Task A_node_server_gets_a_free_port_passed_in_and_is_reported_with_a_local_url()
    {
        var project = ServerProject("--port {port}");

        await _harness.Manager.StartAsync(project.ProjectId, "ignored", CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        var starting = _harness.Events.For<DevServerStarting>(project.ProjectId).Single();
        Assert.Equal("starting", starting.Phase);
        Assert.Equal(starting.Port, detected.Port);
        Assert.Equal($"node server.js --port {detected.Port}", starting.Command);
        Assert.Equal($"http://localhost:{detected.Port}/", detected.PreviewUrl);
        Assert.Equal("local", detected.Provider);
        Assert.Equal(detected.Port, _harness.Manager.GetDevServerPort(project.ProjectId));
        using var http = new HttpClient();
        Assert.Contains("<div id=\"root\"></div>", await http.GetStringAsync($"http://127.0.0.1:{detected.Port}/"));
    }

    [Fact]
    public async Task A_project_without_a_run_command_runs_its_dev_script_with_the_package_manager_its_lockfile_names()
    {
        _folder.Write("package.json", """{ "name": "p", "private": true, "scripts": { "dev": "node server.js" } }""");
        _folder.Write("pnpm-lock.yaml", "lockfileVersion: '9.0'\n");
        Directory.CreateDirectory(Path.Combine(_folder.Path, "node_modules")); // installed: the run command comes next
        var project = _harness.Locator.Add(_folder.Path, runCommand: null);

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var starting = await _harness.Events.WaitForAsync<DevServerStarting>(project.ProjectId, timeout: Timeout);

        // The same detection the build's metadata uses (Core/PackageJson), not a second npm-only one.
        Assert.Equal("pnpm run dev", starting.Command);
    }

    [Fact]
    public async Task A_dev_script_that_is_one_installed_binary_runs_that_binary_without_npm_in_between()
    {
        var project = BinaryProject(dev: "serve-bin --from-script");

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);
        var said = await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.StartsWith("ran as", StringComparison.Ordinal), Timeout);

        var starting = _harness.Events.For<DevServerStarting>(project.ProjectId).Single();
        Assert.Equal($"{Path.Combine(_folder.Path, "node_modules", ".bin", "serve-bin")} --from-script --open --port {detected.Port}", starting.Command);
        // npm sets npm_lifecycle_event for the script it runs; the binary run by itself has none, and finds .bin on PATH as under npm.
        Assert.Equal($"ran as - with --from-script --open --port {detected.Port}; bin on PATH: true", said.Line);
    }

    [Theory]
    [InlineData("serve-bin --from-script && echo done", null)]
    [InlineData("serve-bin --from-script", "echo before")]
    [InlineData("node node_modules/serve-bin/bin.js --from-script", null)]
    [InlineData("serve-bin --from-script --host $HOST", null)]
    [InlineData("serve-bin --from-script --root ~/site", null)]
    public async Task A_dev_script_with_shell_syntax_a_pre_script_or_no_installed_binary_still_runs_through_npm(string dev, string? predev)
    {
        var project = BinaryProject(dev, predev);

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var starting = await _harness.Events.WaitForAsync<DevServerStarting>(project.ProjectId, timeout: Timeout);

        Assert.StartsWith("npm run dev -- --open --port ", starting.Command);
    }

    /// <summary>A project whose dev script names an installed binary that prints how it was run, then serves.</summary>
    private Runner.Core.ProjectLocation BinaryProject(string dev, string? predev = null)
    {
        var scripts = predev is null ? $$"""{ "dev": "{{dev}}" }""" : $$"""{ "predev": "{{predev}}", "dev": "{{dev}}" }""";
        _folder.Write("package.json", $$"""{ "name": "bin-project", "private": true, "scripts": {{scripts}} }""");
        _folder.Write("node_modules/serve-bin/bin.js", "#!/usr/bin/env node\n" + """
            const path = require('path');
            const bin = path.join(process.cwd(), 'node_modules', '.bin');
            console.log('ran as ' + (process.env.npm_lifecycle_event || '-') + ' with ' + process.argv.slice(2).join(' ')
              + '; bin on PATH: ' + (process.env.PATH || '').split(path.delimiter).includes(bin));
            """ + NodeScripts.Server);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(Path.Combine(_folder.Path, "node_modules", "serve-bin", "bin.js"),
                UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        Directory.CreateDirectory(Path.Combine(_folder.Path, "node_modules", ".bin"));
        File.CreateSymbolicLink(Path.Combine(_folder.Path, "node_modules", ".bin", "serve-bin"), "../serve-bin/bin.js");
        // As a built-in template's run command and port argument are written (Protocol/Templates/vite-react.json).
        return _harness.Locator.Add(_folder.Path, "npm run dev -- --open", portArgument: "-- --port {port}");
    }

    [Fact]
    public async Task The_relay_provider_reports_the_preview_host_of_the_broker()
    {
        await ReplaceHarnessAsync(new DevServerHarness(new RelayPreviewUrlProvider(Options.Create(DevServerHarness.RelayOptions()))));
        var project = ServerProject(portArgument: null);

        await _harness.Manager.StartAsync(project.ProjectId, "k3x9q2", CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        Assert.Equal("http://k3x9q2.preview.localhost:5080/", detected.PreviewUrl);
        Assert.Equal("relay", detected.Provider);
        Assert.Equal(detected.Port, _harness.Manager.GetDevServerPort(project.ProjectId));
    }

    [Fact]
    public async Task A_server_without_a_port_argument_that_ignores_PORT_is_found_from_its_output()
    {
        var ownPort = FreePort();
        _folder.Write("server.js", NodeScripts.FixedPort(ownPort));
        var project = _harness.Locator.Add(_folder.Path, "node server.js", portArgument: null);

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        Assert.Equal(ownPort, detected.Port);
        Assert.Equal(ownPort, _harness.Manager.GetDevServerPort(project.ProjectId));
        // Colour codes are stripped before lines leave the runner.
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId), l => l.Line == $"  ➜  Local:   http://localhost:{ownPort}/");
    }

    [Fact]
    public async Task A_crash_is_reported_with_its_exit_code_and_last_lines_and_leaves_no_process()
    {
        var trigger = Path.Combine(_folder.Path, "crash-now");
        _folder.Write("crash.js", NodeScripts.Crash);
        var project = _harness.Locator.Add(_folder.Path, $"node crash.js {trigger}");
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.StartsWith("grandchild "), Timeout);
        var tree = Processes.TreeOf(DevServerPid());

        File.WriteAllText(trigger, "");
        var exited = await _harness.Events.WaitForAsync<DevServerExited>(project.ProjectId, timeout: Timeout);

        Assert.Equal(1, exited.ExitCode);
        Assert.Equal("crashed", exited.Reason);
        Assert.Contains("booting", exited.LastLines);
        Assert.Contains("Error: missing config file app.config.js", exited.LastLines);
        Assert.Empty(Processes.StillAlive(tree));
        Assert.Null(_harness.Manager.GetDevServerPort(project.ProjectId));
        Assert.IsType<DevServerExited>(_harness.Events.For(project.ProjectId)[^1]);
    }

    [Fact]
    public async Task Stop_reports_stopped_and_leaves_no_process_behind()
    {
        var project = ServerProject("--port {port}");
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);
        await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.StartsWith("grandchild "), Timeout);
        var tree = Processes.TreeOf(DevServerPid());
        Assert.True(tree.Count >= 3);

        await _harness.Manager.StopAsync(project.ProjectId, CancellationToken.None).WaitAsync(Timeout);

        var exited = await _harness.Events.WaitForAsync<DevServerExited>(project.ProjectId, timeout: Timeout);
        Assert.Equal("stopped", exited.Reason);
        Assert.Empty(Processes.StillAlive(tree));
        Assert.Empty(_harness.Supervisor.List());
        Assert.Null(_harness.Manager.GetDevServerPort(project.ProjectId));
    }

    [Fact]
    public async Task Starting_again_restarts_the_one_dev_server_of_the_project()
    {
        var project = ServerProject("--port {port}");
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);
        var firstPid = DevServerPid();

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, skip: 1, timeout: Timeout);

        Assert.Equal("stopped", Assert.Single(_harness.Events.For<DevServerExited>(project.ProjectId)).Reason);
        Assert.Null(ProcessTable.Get(firstPid));
        var running = Assert.Single(_harness.Supervisor.List());
        Assert.NotEqual(firstPid, running.ProcessId);
    }

    [Fact]
    public async Task A_project_without_node_modules_is_installed_first()
    {
        _folder.Write("package.json", """{ "name": "tiny", "version": "1.0.0", "private": true, "scripts": { "dev": "node server.js" } }""");
        _folder.Write("server.js", NodeScripts.Server);
        var project = _harness.Locator.Add(_folder.Path, runCommand: null);

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: TimeSpan.FromSeconds(90));

        var phases = _harness.Events.For<DevServerStarting>(project.ProjectId);
        Assert.Equal(["installing", "starting"], phases.Select(p => p.Phase));
        Assert.StartsWith("npm install", phases[0].Command);
        Assert.Equal("npm run dev", phases[1].Command);
    }

    [Fact]
    public async Task A_failing_install_is_reported_as_install_failed_and_nothing_is_started()
    {
        _folder.Write("package.json", """{ "name": "broken", "version": "1.0.0", "private": true, "dependencies": { "nothing-here": "file:./does-not-exist.tgz" } }""");
        var project = _harness.Locator.Add(_folder.Path, "npm run dev");

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var exited = await _harness.Events.WaitForAsync<DevServerExited>(project.ProjectId, timeout: TimeSpan.FromSeconds(90));

        Assert.Equal("install-failed", exited.Reason);
        Assert.NotEqual(0, exited.ExitCode);
        Assert.NotEmpty(exited.LastLines);
        Assert.DoesNotContain(_harness.Events.For<DevServerStarting>(project.ProjectId), s => s.Phase == "starting");
    }

    [Fact]
    public async Task A_chatty_server_is_rate_limited_with_a_summary_line()
    {
        await ReplaceHarnessAsync(new DevServerHarness(configure: o => o.MaxLogLinesPerSecond = 50));
        _folder.Write("server.js", NodeScripts.Chatty);
        var project = _harness.Locator.Add(_folder.Path, "node server.js");

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);
        var summary = await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.Contains("not shown"), Timeout);

        var logs = _harness.Events.For<DevServerLog>(project.ProjectId);
        Assert.InRange(logs.Count, 10, 300);
        Assert.Matches(@"\d+ more lines not shown", summary.Line);
    }

    [Fact]
    public async Task A_server_that_never_listens_gets_a_notice_in_its_log_instead_of_silence()
    {
        await ReplaceHarnessAsync(new DevServerHarness(configure: o => o.SlowStartNotice = TimeSpan.FromMilliseconds(500)));
        _folder.Write("server.js", "console.log('warming up'); setInterval(() => {}, 1000);");
        var project = _harness.Locator.Add(_folder.Path, "node server.js");

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var notice = await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.Contains("Still waiting"), Timeout);

        Assert.Equal("stderr", notice.Stream);
        Assert.Empty(_harness.Events.For<PortDetected>(project.ProjectId));
    }

    [Fact]
    public async Task Commands_with_shell_operators_are_refused()
    {
        var project = _harness.Locator.Add(_folder.Path, "npm run build && rm -rf ~");

        var ex = await Assert.ThrowsAsync<DevServerException>(() => _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None));

        Assert.Contains("without a shell", ex.Message);
        Assert.Empty(_harness.Supervisor.List());
    }

    [Fact]
    public async Task An_unknown_project_is_refused_with_a_reason()
    {
        var ex = await Assert.ThrowsAsync<DevServerException>(() => _harness.Manager.StartAsync(Guid.NewGuid(), null, CancellationToken.None));

        Assert.Contains("not on this runner", ex.Message);
    }

    [Fact]
    public async Task Runner_exit_stops_dev_servers_and_their_children()
    {
        var project = ServerProject("--port {port}");
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.StartsWith("grandchild "), Timeout);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);
        var tree = Processes.TreeOf(DevServerPid());

        await _harness.Supervisor.DisposeAsync().AsTask().WaitAsync(Timeout);

        Assert.Empty(Processes.StillAlive(tree));
        Assert.Equal("stopped", (await _harness.Events.WaitForAsync<DevServerExited>(project.ProjectId, timeout: Timeout)).Reason);
    }

    [Fact]
    public async Task A_dev_server_a_dead_runner_left_noted_as_running_is_reported_stopped_at_the_next_start_and_a_stopped_one_is_not()
    {
        var state = System.IO.Path.Combine(_folder.Path, "state");
        await ReplaceHarnessAsync(new DevServerHarness(configure: o => o.StateDirectory = state));
        var project = ServerProject("--port {port}");
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);
        Assert.Single(Directory.GetFiles(state));
        await _harness.Manager.StopAsync(project.ProjectId, CancellationToken.None);
        Assert.Empty(Directory.GetFiles(state));

        var orphaned = Guid.NewGuid();
        File.WriteAllBytes(System.IO.Path.Combine(state, orphaned.ToString("N") + ".running"), []); // what a killed runner leaves
        await ReplaceHarnessAsync(new DevServerHarness(configure: o => o.StateDirectory = state));
        await ((Microsoft.Extensions.Hosting.IHostedService)_harness.Manager).StartAsync(CancellationToken.None);

        var exited = Assert.IsType<DevServerExited>(Assert.Single(_harness.Events.For(orphaned)));
        Assert.Equal(DevServerManager.Reasons.Stopped, exited.Reason);
        Assert.Contains("runner stopped", Assert.Single(exited.LastLines));
        Assert.Empty(_harness.Events.For(project.ProjectId));
        Assert.Empty(Directory.GetFiles(state));
    }

    private Runner.Core.ProjectLocation ServerProject(string? portArgument)
    {
        _folder.Write("server.js", NodeScripts.Server);
        return _harness.Locator.Add(_folder.Path, "node server.js", portArgument);
    }

    private int DevServerPid() => Assert.Single(_harness.Supervisor.List(), p => p.Name == "dev-server").ProcessId;

    private async Task ReplaceHarnessAsync(DevServerHarness harness)
    {
        await _harness.DisposeAsync();
        _harness = harness;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
