// The install cache with real npm: a packed dependency with a bin script, installed once, then copied into a second
// project with the same package.json, whose dev server must start from the copy (the .bin link and the module).
using CliWrap;
using Microsoft.Extensions.Hosting;
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
        Assert.Contains(_harness.Events.For<DevServerLog>(second.ProjectId), l => l.Line.Contains("node_modules moved in from an identical earlier install"));
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
        var entry = Assert.Single(Directory.GetDirectories(CacheRoot), d => !d.Contains(".partial-"));
        await Wait.UntilAsync(() => Directory.Exists(Path.Combine(entry, "node_modules.spare")), InstallTimeout, "the entry's spare");
        foreach (var copy in new[] { "node_modules", "node_modules.spare" })
        {
            File.WriteAllText(Path.Combine(entry, copy, "serve-dep", "bin.js"), "#!/usr/bin/env node\nprocess.exit(3);\n");
        }

        var second = Project("second");
        await _harness.Manager.StartAsync(second.ProjectId, null, CancellationToken.None);
        var exited = await _harness.Events.WaitForAsync<DevServerExited>(second.ProjectId, timeout: InstallTimeout);

        Assert.Equal("crashed", exited.Reason);
        // The restore took the spare and started its refill; that finds the entry gone and leaves nothing either.
        await Wait.UntilAsync(() => Directory.GetDirectories(CacheRoot).Length == 0, InstallTimeout, "an empty cache");
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

    [Fact]
    public async Task A_restore_renames_the_entrys_spare_into_place_and_the_spare_is_refilled_after()
    {
        var cache = new InstallCache(CacheRoot);
        var key = await StoreAsync(cache, "source");
        var spare = Path.Combine(CacheRoot, key, "node_modules.spare");
        Assert.True(Directory.Exists(spare), "a stored entry gets a spare");
        // Only the spare has this file: finding it in the project shows the spare was moved there, not copied from the entry.
        File.WriteAllText(Path.Combine(spare, "marker"), "spare");

        var first = Path.Combine(_folder.Path, "p1");
        Directory.CreateDirectory(first);
        Assert.Equal(InstallRestore.Spare, await cache.TryRestoreAsync(key, first));

        Assert.True(File.Exists(Path.Combine(first, "node_modules", "marker")), "the restore renamed the spare");
        Assert.Equal("module.exports = 1;", File.ReadAllText(Path.Combine(first, "node_modules", "dep", "index.js")));
        Assert.Equal("../dep/bin.js", new FileInfo(Path.Combine(first, "node_modules", ".bin", "dep")).LinkTarget);
        await cache.SpareRefill(key).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(File.Exists(Path.Combine(spare, "dep", "index.js")), "the spare is refilled in the background");
        Assert.False(File.Exists(Path.Combine(spare, "marker")), "the refill copies the entry, not the taken spare");

        var second = Path.Combine(_folder.Path, "p2");
        Directory.CreateDirectory(second);
        File.WriteAllText(Path.Combine(spare, "marker"), "refilled");
        Assert.Equal(InstallRestore.Spare, await cache.TryRestoreAsync(key, second));
        Assert.Equal("refilled", File.ReadAllText(Path.Combine(second, "node_modules", "marker")));
    }

    [Fact]
    public async Task A_restore_while_the_spare_is_refilled_waits_for_it_and_takes_it_instead_of_copying_beside_it()
    {
        // A project created right after another finds the spare taken and its refill copying: a copy of its own beside
        // the refill would slow both. Two thousand files make the refill last long after the first restore returns.
        var cache = new InstallCache(CacheRoot);
        var key = await StoreAsync(cache, "source", extraFiles: 2000);
        var first = Path.Combine(_folder.Path, "p1");
        var second = Path.Combine(_folder.Path, "p2");
        Directory.CreateDirectory(first);
        Directory.CreateDirectory(second);

        Assert.Equal(InstallRestore.Spare, await cache.TryRestoreAsync(key, first));
        var refill = cache.SpareRefill(key);
        Assert.False(refill.IsCompleted, "the refill of the spare the first restore took is under way");
        Assert.Equal(InstallRestore.Spare, await cache.TryRestoreAsync(key, second));

        Assert.True(refill.IsCompleted);
        Assert.Equal(2000, Directory.GetFiles(Path.Combine(second, "node_modules", "many")).Length);
        await cache.SpareRefill(key).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(Directory.Exists(Path.Combine(CacheRoot, key, "node_modules.spare")), "the spare it took is refilled too");
    }

    [Fact]
    public async Task Concurrent_restores_of_one_entry_each_get_a_whole_node_modules_and_one_takes_the_spare()
    {
        var cache = new InstallCache(CacheRoot);
        var key = await StoreAsync(cache, "source");
        File.WriteAllText(Path.Combine(CacheRoot, key, "node_modules.spare", "marker"), "spare");
        var projects = Enumerable.Range(0, 6).Select(i => Path.Combine(_folder.Path, $"c{i}")).ToList();
        projects.ForEach(p => Directory.CreateDirectory(p));
        using var start = new Barrier(projects.Count);

        var restored = await Task.WhenAll(projects.Select(p => Task.Run(async () =>
        {
            start.SignalAndWait();
            return await cache.TryRestoreAsync(key, p);
        })));
        await cache.SpareRefill(key).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.All(restored, how => Assert.NotEqual(InstallRestore.None, how));
        Assert.All(projects, p => Assert.Equal("module.exports = 1;", File.ReadAllText(Path.Combine(p, "node_modules", "dep", "index.js"))));
        Assert.Single(projects, p => File.Exists(Path.Combine(p, "node_modules", "marker")));
        Assert.Equal(["node_modules", "node_modules.spare", "package-lock.json"],
            Directory.GetFileSystemEntries(Path.Combine(CacheRoot, key)).Select(Path.GetFileName).Order());
    }

    [Fact]
    public async Task A_spare_taken_the_moment_its_refill_puts_it_in_place_is_refilled_again()
    {
        // A restore that takes the spare just as the refill that made it finishes must start the next refill: the refill
        // once said it was under way until a moment after the spare was in place, and a spare taken in that moment was
        // never replaced. Spinning on the spare's folder hits that moment within a thousand rounds (2 of 3 runs here).
        var cache = new InstallCache(CacheRoot);
        var key = await StoreAsync(cache, "source");
        var spare = Path.Combine(CacheRoot, key, "node_modules.spare");
        for (var round = 0; round < 1000; round++)
        {
            var since = System.Diagnostics.Stopwatch.StartNew();
            while (!Directory.Exists(spare))
            {
                Assert.True(since.Elapsed < TimeSpan.FromSeconds(10), $"round {round}: the spare was taken and never refilled");
                Thread.SpinWait(20);
            }
            var project = Path.Combine(_folder.Path, $"r{round}");
            Directory.CreateDirectory(project);
            Assert.Equal(InstallRestore.Spare, await cache.TryRestoreAsync(key, project));
            Directory.Delete(project, recursive: true);
        }
        await cache.SpareRefill(key).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(Directory.Exists(spare));
    }

    [Fact]
    public async Task An_evicted_entry_goes_with_its_spare_and_a_refill_under_way_leaves_nothing_behind()
    {
        var cache = new InstallCache(CacheRoot, maxEntries: 1);
        var old = await StoreAsync(cache, "old");
        var project = Path.Combine(_folder.Path, "p");
        Directory.CreateDirectory(project);
        Assert.Equal(InstallRestore.Spare, await cache.TryRestoreAsync(old, project)); // takes the spare and starts its refill
        var refill = cache.SpareRefill(old);

        var newer = await StoreAsync(cache, "newer"); // evicts the old entry, perhaps while its refill copies
        await refill.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal([newer], Directory.GetDirectories(CacheRoot).Select(Path.GetFileName));
        Assert.Equal(["node_modules", "node_modules.spare", "package-lock.json"],
            Directory.GetFileSystemEntries(Path.Combine(CacheRoot, newer)).Select(Path.GetFileName).Order());
        Assert.True(File.Exists(Path.Combine(project, "node_modules", "dep", "index.js")));
    }

    /// <summary>A made-up install (a module, a .bin link, a lockfile) stored under its key; waits for the entry's spare.</summary>
    private async Task<string> StoreAsync(InstallCache cache, string name, int extraFiles = 0)
    {
        for (var i = 0; i < extraFiles; i++) _folder.Write($"{name}/node_modules/many/f{i}.js", "");
        _folder.Write($"{name}/package.json", $$"""{ "name": "{{name}}" }""");
        _folder.Write($"{name}/package-lock.json", "{}");
        _folder.Write($"{name}/node_modules/dep/index.js", "module.exports = 1;");
        _folder.Write($"{name}/node_modules/dep/bin.js", "#!/usr/bin/env node\n");
        Directory.CreateDirectory(Path.Combine(_folder.Path, name, "node_modules", ".bin"));
        File.CreateSymbolicLink(Path.Combine(_folder.Path, name, "node_modules", ".bin", "dep"), "../dep/bin.js");
        var project = Path.Combine(_folder.Path, name);
        var key = InstallCache.KeyFor(project, "npm install");
        cache.Store(key, project);
        await cache.SpareRefill(key).WaitAsync(TimeSpan.FromSeconds(30));
        return key;
    }

    [Fact]
    public async Task Half_made_copies_a_killed_runner_left_are_removed_when_the_next_one_starts()
    {
        // What a runner killed in the middle of storing an entry and of refilling a spare leaves: whole installs' worth of
        // files under names no restore ever reads. Beside them, a copy under way right now and a finished entry.
        var abandoned = new[] { "0123abcd.partial-1a2b3c4d", "0123abcd.partial-spare-5e6f7a8b" };
        foreach (var name in abandoned)
        {
            _folder.Write($"cache/{name}/node_modules/left/index.js", "module.exports = 1;");
            Directory.SetLastWriteTimeUtc(Path.Combine(CacheRoot, name), DateTime.UtcNow - InstallCache.AbandonedAfter - TimeSpan.FromMinutes(1));
        }
        _folder.Write("cache/4567cdef.partial-9c0d1e2f/node_modules/copying/index.js", "module.exports = 2;");
        _folder.Write("cache/0123abcd/node_modules/kept/index.js", "module.exports = 3;");
        Directory.SetLastWriteTimeUtc(Path.Combine(CacheRoot, "0123abcd"), DateTime.UtcNow - TimeSpan.FromDays(3));

        await ((IHostedService)_harness.Manager).StartAsync(CancellationToken.None);

        await Wait.UntilAsync(() => abandoned.All(name => !Directory.Exists(Path.Combine(CacheRoot, name))), TimeSpan.FromSeconds(10),
            "the abandoned copies to be removed");
        Assert.True(Directory.Exists(Path.Combine(CacheRoot, "4567cdef.partial-9c0d1e2f", "node_modules", "copying")));
        Assert.True(File.Exists(Path.Combine(CacheRoot, "0123abcd", "node_modules", "kept", "index.js")));
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
