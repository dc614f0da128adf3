using System.Diagnostics;
using SentryVibe.Protocol;
using Xunit.Abstractions;

namespace SentryVibe.DevServer.Tests;

/// <summary>
/// The built-in react-node template as shipped (copied next to the runner), installed once with npm and cached
/// under the temp folder keyed by its package.json, so reruns start in seconds. Its sources are copied afresh each run.
/// </summary>
public sealed class ReactNodeTemplateFixture : IAsyncLifetime
{
    public string Path { get; private set; } = "";

    public TimeSpan InstallTime { get; private set; }

    public async Task InitializeAsync()
    {
        var template = System.IO.Path.Combine(AppContext.BaseDirectory, "Templates", "react-node");
        var packageJson = File.ReadAllText(System.IO.Path.Combine(template, "package.json"));
        (Path, InstallTime) = await ViteProjectFixture.InstallOnceAsync("react-node", packageJson);
        foreach (var file in Directory.EnumerateFiles(template, "*", SearchOption.AllDirectories))
        {
            var target = System.IO.Path.Combine(Path, System.IO.Path.GetRelativePath(template, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

public sealed class ReactNodeTemplateTests(ReactNodeTemplateFixture app, ITestOutputHelper output) : IClassFixture<ReactNodeTemplateFixture>, IAsyncLifetime
{
    private readonly DevServerHarness _harness = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _harness.DisposeAsync().AsTask();

    [Fact]
    public async Task Real_react_node_template_previews_Vites_page_and_not_its_API()
    {
        var template = TemplateCatalog.Find("react-node")!;
        var project = _harness.Locator.Add(app.Path, template.RunCommand, template.PortArgument, framework: template.Framework);

        var watch = Stopwatch.StartNew();
        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: TimeSpan.FromSeconds(60));
        var toPort = watch.Elapsed;

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        using var page = await http.GetAsync($"http://127.0.0.1:{detected.Port}/");
        var html = await page.Content.ReadAsStringAsync();
        // Vite proxies /api to the API the dev script started: the preview reaches both.
        using var health = await http.GetAsync($"http://127.0.0.1:{detected.Port}/api/health");
        output.WriteLine($"npm install (cold cache only): {app.InstallTime.TotalSeconds:0.0} s; start → port-detected: {toPort.TotalMilliseconds:0} ms; port {detected.Port}");
        foreach (var line in _harness.Events.For<DevServerLog>(project.ProjectId))
        {
            output.WriteLine(line.Line);
        }

        Assert.Equal(_harness.Events.For<DevServerStarting>(project.ProjectId).Single().Port, detected.Port);
        Assert.Equal(System.Net.HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        Assert.Contains("<div id=\"root\"></div>", html);
        Assert.Equal(System.Net.HttpStatusCode.OK, health.StatusCode);
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId), l => l.Line.StartsWith("API listening on ", StringComparison.Ordinal));

        await _harness.Manager.StopAsync(project.ProjectId, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("stopped", (await _harness.Events.WaitForAsync<DevServerExited>(project.ProjectId)).Reason);
        Assert.Empty(_harness.Supervisor.List());
    }
}
