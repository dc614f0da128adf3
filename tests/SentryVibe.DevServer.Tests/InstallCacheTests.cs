// The install cache with real npm: a packed dependency with a bin script, installed once, then copied into a second
// project with the same package.json, whose dev server must start from the copy (the .bin link and the module).
using CliWrap;
using SentryVibe.Protocol;
using SentryVibe.Runner.DevServers;

namespace SentryVibe.DevServer.Tests;

public sealed class InstallCacheTests : IAsyncLifetime
{
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromSeconds(120);
    private readonly TempFolder _folder = new();
    private DevServerHarness _harness = null!;

    private string CacheRoot => Path.Combine(_folder.Path, "cache");

    public async Task InitializeAsync()
    {
        _harness = new DevServerHarness(configure: o => o.InstallCacheDirectory = CacheRoot);
        _folder.Write("dep/package.json", """{ "name": "serve-dep", "version": "1.0.0", "bin": { "serve-dep": "bin.js" } }""");
        _folder.Write("dep/bin.js", "#!/usr/bin/env node\n" + NodeScripts.Server);
        await Cli.Wrap("npm").WithArguments(["pack", "--pack-destination", _folder.Path])
            .WithWorkingDirectory(Path.Combine(_folder.Path, "dep")).ExecuteAsync();
    }

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        _folder.Dispose();
    }

    [Fact]
    public async Task A_second_project_with_the_same_package_json_starts_from_a_copy_of_the_first_install()
    {
        var first = Project("first");
        await _harness.Manager.StartAsync(first.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(first.ProjectId, timeout: InstallTimeout);
        Assert.Equal(["installing", "starting"], _harness.Events.For<DevServerStarting>(first.ProjectId).Select(p => p.Phase));
        Assert.Single(Directory.GetDirectories(CacheRoot));

        var second = Project("second");
        await _harness.Manager.StartAsync(second.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(second.ProjectId, timeout: InstallTimeout);

        Assert.Equal(["starting"], _harness.Events.For<DevServerStarting>(second.ProjectId).Select(p => p.Phase));
        Assert.Contains(_harness.Events.For<DevServerLog>(second.ProjectId), l => l.Line.Contains("copied from an identical earlier install"));
        Assert.NotNull(new FileInfo(Path.Combine(second.Path, "node_modules", ".bin", "serve-dep")).LinkTarget);
        Assert.True(File.Exists(Path.Combine(second.Path, "package-lock.json")));
        using var http = new HttpClient();
        Assert.Contains("<div id=\"root\"></div>", await http.GetStringAsync($"http://127.0.0.1:{detected.Port}/"));
    }

    [Fact]
    public async Task A_copy_whose_dev_server_never_comes_up_is_dropped_from_the_cache()
    {
        var first = Project("first");
        await _harness.Manager.StartAsync(first.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<PortDetected>(first.ProjectId, timeout: InstallTimeout);
        var entry = Assert.Single(Directory.GetDirectories(CacheRoot));
        File.WriteAllText(Path.Combine(entry, "node_modules", "serve-dep", "bin.js"), "#!/usr/bin/env node\nprocess.exit(3);\n");

        var second = Project("second");
        await _harness.Manager.StartAsync(second.ProjectId, null, CancellationToken.None);
        var exited = await _harness.Events.WaitForAsync<DevServerExited>(second.ProjectId, timeout: InstallTimeout);

        Assert.Equal("crashed", exited.Reason);
        Assert.Empty(Directory.GetDirectories(CacheRoot));
        Assert.Contains(exited.LastLines, l => l.Contains("installs afresh"));
    }

    [Fact]
    public void The_key_follows_the_install_inputs_and_nothing_else()
    {
        _folder.Write("x/package.json", """{ "name": "x" }""");
        _folder.Write("y/package.json", """{ "name": "x" }""");
        _folder.Write("y/src/App.jsx", "export default () => null;");
        var x = Path.Combine(_folder.Path, "x");
        var y = Path.Combine(_folder.Path, "y");

        Assert.Equal(InstallCache.KeyFor(x, "npm install"), InstallCache.KeyFor(y, "npm install"));
        Assert.NotEqual(InstallCache.KeyFor(x, "npm install"), InstallCache.KeyFor(x, "npm ci"));
        _folder.Write("y/package-lock.json", "{}");
        Assert.NotEqual(InstallCache.KeyFor(x, "npm install"), InstallCache.KeyFor(y, "npm install"));
    }

    private Runner.Core.ProjectLocation Project(string name)
    {
        _folder.Write($"{name}/package.json", """
            { "name": "cached", "version": "1.0.0", "private": true,
              "scripts": { "dev": "serve-dep" },
              "dependencies": { "serve-dep": "file:../serve-dep-1.0.0.tgz" } }
            """);
        return _harness.Locator.Add(Path.Combine(_folder.Path, name), runCommand: null);
    }
}
