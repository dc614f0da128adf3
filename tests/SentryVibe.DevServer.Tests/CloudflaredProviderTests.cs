using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.DevServers;
using SentryVibe.Runner.Processes;
using SentryVibe.Runner.Previews;

namespace SentryVibe.DevServer.Tests;

/// <summary>cloudflared cannot be downloaded here; a stand-in prints the same log lines and serves nothing.</summary>
public sealed class CloudflaredProviderTests : IAsyncLifetime
{
    private const string StandIn = """
        #!/bin/sh
        echo "$@" > "$(dirname "$0")/args.txt"
        echo "2025-01-01T00:00:00Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out." >&2
        echo "2025-01-01T00:00:00Z INF Requesting new quick Tunnel on trycloudflare.com..." >&2
        echo "2025-01-01T00:00:01Z INF +--------------------------------------------------------------------------------------------+" >&2
        echo "2025-01-01T00:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |" >&2
        echo "2025-01-01T00:00:01Z INF |  https://some-words-here.trycloudflare.com                                                 |" >&2
        echo "2025-01-01T00:00:01Z INF +--------------------------------------------------------------------------------------------+" >&2
        echo "2025-01-01T00:00:02Z INF Registered tunnel connection connIndex=0 connection=4f3e location=fra08 protocol=quic" >&2
        exec sleep 600
        """;

    private readonly TempFolder _bin = new();
    private readonly ProcessSupervisor _supervisor = new(gracePeriod: TimeSpan.FromSeconds(2));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        var pids = _supervisor.List().Select(p => p.ProcessId).ToList();
        await _supervisor.DisposeAsync();
        Processes.KillTrees(pids);
        _bin.Dispose();
    }

    [Fact]
    public async Task The_tunnel_url_is_read_from_cloudflared_log_and_the_tunnel_points_at_the_port()
    {
        var provider = Provider(InstallStandIn(StandIn));
        var projectId = Guid.NewGuid();

        var url = await provider.StartAsync(projectId, null, 5173, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal("https://some-words-here.trycloudflare.com/", url);
        var args = File.ReadAllText(Path.Combine(_bin.Path, "args.txt"));
        Assert.Contains("tunnel", args);
        Assert.Contains("--url http://localhost:5173", args);
        var tunnel = Assert.Single(_supervisor.List());
        Assert.Equal("cloudflared", tunnel.Name);
        Assert.Equal(projectId, tunnel.ProjectId);
    }

    [Fact]
    public async Task Stopping_the_preview_stops_the_tunnel_process()
    {
        var provider = Provider(InstallStandIn(StandIn));
        var projectId = Guid.NewGuid();
        await provider.StartAsync(projectId, null, 5173, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        var pid = Assert.Single(_supervisor.List()).ProcessId;

        await provider.StopAsync(projectId).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Null(ProcessTable.Get(pid));
        Assert.Empty(_supervisor.List());
    }

    [Fact]
    public async Task A_missing_cloudflared_says_how_to_install_it_and_that_the_relay_needs_nothing()
    {
        var provider = Provider(Path.Combine(_bin.Path, "cloudflared"));

        var ex = await Assert.ThrowsAsync<ExecutableNotFoundException>(() => provider.StartAsync(Guid.NewGuid(), null, 5173, CancellationToken.None));

        Assert.Contains("Install cloudflared", ex.Message);
        Assert.Contains("brew install cloudflared", ex.Message);
        Assert.Contains("relay", ex.Message);
        Assert.Empty(_supervisor.List());
    }

    [Fact]
    public async Task A_cloudflared_that_prints_no_url_times_out_with_its_last_lines_and_is_stopped()
    {
        var silent = InstallStandIn("""
            #!/bin/sh
            echo "2025-01-01T00:00:00Z ERR failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com: no such host" >&2
            exec sleep 600
            """);
        var provider = Provider(silent, TimeSpan.FromSeconds(1));

        var ex = await Assert.ThrowsAsync<TimeoutException>(() => provider.StartAsync(Guid.NewGuid(), null, 5173, CancellationToken.None));

        Assert.Contains("no trycloudflare.com URL", ex.Message);
        Assert.Contains("no such host", ex.Message);
        Assert.Empty(_supervisor.List());
    }

    [Fact]
    public void The_stand_in_is_found_on_a_PATH_like_the_real_binary()
    {
        var path = InstallStandIn(StandIn);

        Assert.Equal(path, ExecutableLocator.Find("cloudflared", $"/nonexistent{Path.PathSeparator}{_bin.Path}"));
        Assert.Null(ExecutableLocator.Find("cloudflared", "/nonexistent"));
    }

    [Fact]
    public async Task A_dev_server_with_the_cloudflared_provider_reports_the_tunnel_url()
    {
        await using var harness = new DevServerHarness(Provider(InstallStandIn(StandIn)), supervisor: _supervisor);
        using var folder = new TempFolder();
        folder.Write("server.js", NodeScripts.Server);
        var project = harness.Locator.Add(folder.Path, "node server.js", "--port {port}");

        await harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: TimeSpan.FromSeconds(30));

        Assert.Equal("https://some-words-here.trycloudflare.com/", detected.PreviewUrl);
        Assert.Equal("cloudflared", detected.Provider);
        Assert.Contains($"--url http://localhost:{detected.Port}", File.ReadAllText(Path.Combine(_bin.Path, "args.txt")));

        await harness.Manager.StopAsync(project.ProjectId, CancellationToken.None);
        Assert.Empty(_supervisor.List());
    }

    [Fact]
    public async Task Without_cloudflared_the_dev_server_still_runs_and_says_why_the_url_is_local()
    {
        await using var harness = new DevServerHarness(Provider(Path.Combine(_bin.Path, "cloudflared")), supervisor: _supervisor);
        using var folder = new TempFolder();
        folder.Write("server.js", NodeScripts.Server);
        var project = harness.Locator.Add(folder.Path, "node server.js", "--port {port}");

        await harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: TimeSpan.FromSeconds(30));

        Assert.Equal("local", detected.Provider);
        Assert.Equal($"http://localhost:{detected.Port}/", detected.PreviewUrl);
        Assert.Contains(harness.Events.For<DevServerLog>(project.ProjectId), l => l.Stream == "stderr" && l.Line.Contains("Install cloudflared"));
    }

    private CloudflaredPreviewUrlProvider Provider(string path, TimeSpan? timeout = null) =>
        new(_supervisor, Options.Create(new PreviewOptions
        {
            Provider = PreviewProviders.Cloudflared,
            CloudflaredPath = path,
            CloudflaredTimeout = timeout ?? TimeSpan.FromSeconds(20),
        }));

    private string InstallStandIn(string script)
    {
        var path = Path.Combine(_bin.Path, "cloudflared");
        File.WriteAllText(path, script.Replace("\r\n", "\n") + "\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return path;
    }
}
