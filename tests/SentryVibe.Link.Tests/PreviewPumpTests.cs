// A dev server that dies in the middle of a relayed request (a stop, a crash) resets its connection. The runner's pump
// must pass that on, so the relay answers instead of leaving the browser's request (and its connection) hanging. Real
// broker process, real runner link, a raw TCP "dev server" that resets.
using System.Net;
using System.Net.Sockets;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class PreviewPumpTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string PreviewDomain = "preview.example.test";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _preview = Guid.NewGuid().ToString("N");
    private readonly Guid _project = Guid.NewGuid();
    private readonly TcpListener _dev = new(IPAddress.Loopback, 0);
    private string _db = "";
    private BrokerProcess _broker = null!;
    private InProcessRunner _runner = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        _broker = await BrokerProcess.StartAsync(_db, previewDomain: PreviewDomain);
        _dev.Start();
        var port = ((IPEndPoint)_dev.LocalEndpoint).Port;
        await using (var db = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(_db).Options))
        {
            db.Projects.Add(new Project
            {
                Id = _project, Slug = "reset", Name = "reset", Prompt = "p", TemplateId = "vite-react", Agent = "none",
                RunnerId = "pump", Status = ProjectStatuses.Ready, PreviewId = _preview,
                DevServer = new DevServerState { Status = DevServerStatuses.Running, Port = port, Provider = "relay" },
                CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        _runner = await InProcessRunner.StartAsync(_broker.LinkUri, "pump", configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(port, _project)));
        await _runner.WaitConnectedAsync();
    }

    public async Task DisposeAsync()
    {
        _dev.Stop();
        await _runner.DisposeAsync();
        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task A_dev_server_that_resets_its_connection_mid_request_gets_the_browser_an_answer()
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = Timeout.InfiniteTimeSpan };
        var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_broker.Port}/");
        request.Headers.Host = $"{_preview}.{PreviewDomain}";
        var response = http.SendAsync(request);

        // The dev server takes the request, then dies: closing with a zero linger time sends a reset, not a FIN.
        using (var dying = await _dev.AcceptTcpClientAsync().WaitAsync(Wait))
        {
            var buffer = new byte[4096];
            await dying.GetStream().ReadAsync(buffer).AsTask().WaitAsync(Wait);
            _dev.Stop();
            dying.Client.LingerState = new LingerOption(true, 0);
            dying.Client.Close();
        }

        using var answer = await response.WaitAsync(Wait);
        Assert.Equal(HttpStatusCode.BadGateway, answer.StatusCode);
        Assert.Contains("did not answer", await answer.Content.ReadAsStringAsync());
    }
}
