// Which port becomes the preview (docs/architecture.md, "Which port is the preview"): the port the runner passed,
// else a port of the dev server's own process tree that answers HTML at /; never a port another program holds.
using System.Net;
using System.Net.Sockets;
using System.Text;
using SentryVibe.Protocol;

namespace SentryVibe.DevServer.Tests;

public sealed class PreviewPortTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private const string ApiBanner = "API listening on http://127.0.0.1:{port}";
    private const string ViteBanner = "  ➜  Local:   http://localhost:{port}/";
    private readonly TempFolder _folder = new();
    private readonly DevServerHarness _harness = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        _folder.Dispose();
    }

    [Fact]
    public async Task An_API_that_announces_its_port_first_does_not_replace_the_port_the_runner_passed()
    {
        // The react-node shape: the API is up and printing its URL a second before the web server listens.
        var project = DevScriptProject("--port {port}",
            ("json", "0", ApiBanner, 0),
            ("html", "ARG", "web listening on port {port}", 1000));

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        var passed = _harness.Events.For<DevServerStarting>(project.ProjectId).Single().Port;
        Assert.Equal(passed, detected.Port);
        Assert.Equal(passed, _harness.Manager.GetDevServerPort(project.ProjectId));
        var apiPort = ApiPortFromLog(project.ProjectId);
        Assert.NotEqual(apiPort, detected.Port);
        await AssertServesHtmlAsync(detected.Port);
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId),
            l => l.Line.Contains($"names port {apiPort}; the preview stays on port {passed}"));
    }

    [Fact]
    public async Task Without_a_port_argument_the_own_port_that_serves_HTML_is_the_preview_and_the_API_is_not()
    {
        // It ignores PORT: the API prints first (JSON at /), then the web server prints the page's URL.
        var project = DevScriptProject(null,
            ("json", "0", ApiBanner, 0),
            ("html", "0", ViteBanner, 1000));

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        var apiPort = ApiPortFromLog(project.ProjectId);
        Assert.NotEqual(apiPort, detected.Port);
        Assert.NotEqual(_harness.Events.For<DevServerStarting>(project.ProjectId).Single().Port, detected.Port);
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId), l => l.Line == $"  ➜  Local:   http://localhost:{detected.Port}/");
        await AssertServesHtmlAsync(detected.Port);
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId),
            l => l.Line.Contains($"Port {apiPort} (named in the output) does not answer HTML"));
    }

    [Fact]
    public async Task A_page_of_another_program_named_in_the_output_is_never_the_preview()
    {
        // The attacker: a program outside the dev server's tree serves HTML, and the output names its URL first.
        using var foreign = new ForeignHtmlServer();
        var project = DevScriptProject(null,
            ("say", "0", $"  ➜  Local:   http://localhost:{foreign.Port}/", 0),
            ("html", "0", ViteBanner, 1000));

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        var detected = await _harness.Events.WaitForAsync<PortDetected>(project.ProjectId, timeout: Timeout);

        Assert.NotEqual(foreign.Port, detected.Port);
        Assert.NotEqual(foreign.Port, _harness.Manager.GetDevServerPort(project.ProjectId));
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId), l => l.Line == $"  ➜  Local:   http://localhost:{detected.Port}/");
        Assert.Contains(_harness.Events.For<DevServerLog>(project.ProjectId),
            l => l.Line.Contains($"names port {foreign.Port}, but another program listens there"));
        await AssertServesHtmlAsync(detected.Port);
    }

    [Fact]
    public async Task A_page_of_another_program_named_in_the_output_is_refused_even_when_nothing_else_comes_up()
    {
        using var foreign = new ForeignHtmlServer();
        var project = DevScriptProject(null, ("say", "0", $"Server running at http://127.0.0.1:{foreign.Port}/", 0));

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.Contains("another program listens there"), Timeout);

        Assert.Empty(_harness.Events.For<PortDetected>(project.ProjectId));
        Assert.Equal(_harness.Events.For<DevServerStarting>(project.ProjectId).Single().Port, _harness.Manager.GetDevServerPort(project.ProjectId));
    }

    [Fact]
    public async Task A_server_that_ignores_the_port_argument_is_not_previewed_elsewhere()
    {
        var project = DevScriptProject("--port {port}", ("html", "0", ViteBanner, 0));

        await _harness.Manager.StartAsync(project.ProjectId, null, CancellationToken.None);
        await _harness.Events.WaitForAsync<DevServerLog>(project.ProjectId, l => l.Line.Contains("the preview stays on port"), Timeout);

        Assert.Empty(_harness.Events.For<PortDetected>(project.ProjectId));
    }

    private Runner.Core.ProjectLocation DevScriptProject(string? portArgument, params (string, string, string, int)[] servers)
    {
        _folder.Write("serve.js", NodeScripts.Serve);
        _folder.Write("dev.js", NodeScripts.DevScript(servers));
        return _harness.Locator.Add(_folder.Path, "node dev.js", portArgument);
    }

    private int ApiPortFromLog(Guid projectId)
    {
        var line = Assert.Single(_harness.Events.For<DevServerLog>(projectId), l => l.Line.StartsWith("API listening on ", StringComparison.Ordinal));
        return int.Parse(line.Line[(line.Line.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task AssertServesHtmlAsync(int port)
    {
        using var http = new HttpClient();
        using var page = await http.GetAsync($"http://127.0.0.1:{port}/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>A listener of the test process itself (not of the dev server's tree) answering every request with a page.</summary>
    private sealed class ForeignHtmlServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();

        public ForeignHtmlServer()
        {
            _listener.Start();
            Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
            _ = Task.Run(ServeAsync);
        }

        public int Port { get; }

        private async Task ServeAsync()
        {
            var response = Encoding.ASCII.GetBytes(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 22\r\nConnection: close\r\n\r\n<h1>someone else</h1>\n");
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    if (await stream.ReadAsync(buffer, _stop.Token) > 0)
                    {
                        await stream.WriteAsync(response, _stop.Token);
                    }
                }
                catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
                {
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            _stop.Dispose();
        }
    }
}
