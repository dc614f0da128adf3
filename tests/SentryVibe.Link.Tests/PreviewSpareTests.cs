// Spare preview sockets (docs/runner-protocol.md, "Spare preview sockets"), from both sides. The attacker's: another
// runner's token, no token, a made-up key, one more spare than the cap, a key whose link closed — each the same 404; a
// spare that speaks before it has a project never answers a request. The honest runner's: once a preview is in use, its
// next connections take spares (no ticket), a spare gets its project first, a project the runner has no dev server for
// is refused with the reason, and a spare not taken is closed after its idle time.
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class PreviewSpareTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string Idle = "sentryvibe.preview.spares.idle";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly List<IAsyncDisposable> _cleanup = [];
    private readonly List<ClientWebSocket> _sockets = [];
    private PreviewBroker _env = null!;

    public async Task InitializeAsync() => _env = await PreviewBroker.StartAsync(postgres);

    public async Task DisposeAsync()
    {
        foreach (var socket in _sockets) socket.Dispose();
        foreach (var item in Enumerable.Reverse(_cleanup)) await item.DisposeAsync();
        await _env.DisposeAsync();
    }

    [Fact]
    public async Task A_spare_key_takes_only_its_link_s_token_up_to_the_cap_and_every_other_try_is_the_same_404()
    {
        var link = await RawLink.ConnectAsync(_env.Broker.LinkUri, _env.VictimToken, TicketRunner.Refusing());
        var reply = await link.HelloAsync("victim");
        Assert.True(LinkProtocol.IsPreviewTicket(reply.PreviewSpareKey), $"the Hello reply offers a spare key: {reply.PreviewSpareKey}");
        Assert.Equal(4, reply.PreviewSpares);
        var spare = LinkProtocol.PreviewSocketUri(_env.Broker.LinkUri, reply.PreviewSpareKey!);

        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(spare, _env.AttackerToken));
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(spare, null));
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(LinkProtocol.PreviewSocketUri(_env.Broker.LinkUri, Previews.MadeUpTicket()), _env.VictimToken));

        var held = new List<ClientWebSocket>();
        for (var i = 0; i < reply.PreviewSpares; i++) held.Add(await RawLink.ConnectSocketAsync(spare, _env.VictimToken));
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(spare, _env.VictimToken));

        // The link closes: its spares are closed with it and its key is the same 404.
        await link.DisposeAsync();
        foreach (var socket in held)
        {
            var end = await socket.ReceiveAsync(new byte[16].AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);
            Assert.Equal(WebSocketMessageType.Close, end.MessageType);
            socket.Dispose();
        }
        Assert.Equal(HttpStatusCode.NotFound, await RawLink.TryUpgradeAsync(spare, _env.VictimToken));
    }

    [Fact]
    public async Task A_new_preview_connection_takes_a_spare_without_a_ticket_and_the_spare_hears_its_project_first()
    {
        var (runner, project, preview, spare) = await OneSpareAsync();

        var response = GetAsync(preview);
        var buffer = new byte[4096];
        var bind = await spare.ReceiveAsync(buffer.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Text, bind.MessageType);
        Assert.Equal(project.ToString("D"), Encoding.ASCII.GetString(buffer, 0, bind.Count));
        var request = await spare.ReceiveAsync(buffer.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);
        Assert.StartsWith("GET / HTTP/1.1", Encoding.ASCII.GetString(buffer, 0, request.Count));
        await spare.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nspare"u8.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None);

        using var answer = await response.WaitAsync(Wait);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("spare", await answer.Content.ReadAsStringAsync());
        Assert.Empty(runner.Tickets);
    }

    [Fact]
    public async Task A_spare_that_speaks_before_it_has_a_project_is_closed_and_never_answers_a_request()
    {
        await using var metrics = BrokerMetrics.Start(_env.Broker.ProcessId);
        var (runner, _, preview, rogue) = await OneSpareAsync(metrics);

        // An answer sent ahead, hoping to become the response to whatever request comes next.
        await rogue.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"u8.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None);
        var end = await rogue.ReceiveAsync(new byte[64].AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);
        Assert.Equal(WebSocketMessageType.Close, end.MessageType);
        await metrics.WaitForAsync(Idle, v => v == 0, Wait, "the broker to drop the spare");

        using var answer = await GetAsync(preview).WaitAsync(Wait);
        Assert.Equal(HttpStatusCode.BadGateway, answer.StatusCode);
        Assert.DoesNotContain("evil", await answer.Content.ReadAsStringAsync());
        Assert.Single(runner.Tickets); // it went the ticket's way
    }

    [Fact]
    public async Task A_spare_not_taken_is_closed_after_its_idle_time()
    {
        // A broker of its own: the others' spares must not be retired while a test waits on them.
        var broker = Keep(await BrokerProcess.StartAsync(_env.Db, previewDomain: PreviewBroker.Domain,
            settings: new Dictionary<string, string> { ["Broker__PreviewSpareIdle"] = "00:00:02" }));
        var link = Keep(await RawLink.ConnectAsync(broker.LinkUri, _env.VictimToken, TicketRunner.Refusing()));
        var reply = await link.HelloAsync("victim");
        using var spare = await RawLink.ConnectSocketAsync(LinkProtocol.PreviewSocketUri(broker.LinkUri, reply.PreviewSpareKey!), _env.VictimToken);

        var end = await spare.ReceiveAsync(new byte[64].AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);

        Assert.Equal(WebSocketMessageType.Close, end.MessageType);
    }

    [Fact]
    public async Task Once_a_preview_is_in_use_the_runner_keeps_spares_and_its_next_connections_take_them()
    {
        await using var metrics = BrokerMetrics.Start(_env.Broker.ProcessId);
        var server = Keep(new ClosingDevServer());
        var (served, preview) = await AddProjectAsync("spares");
        var (_, unserved) = await AddProjectAsync("spares");
        var runner = Keep(await InProcessRunner.StartAsync(_env.Broker.LinkUri, "spares",
            configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(server.Port, served))));
        await runner.WaitConnectedAsync();

        // The first connection waits for a ticket's socket; the runner then dials its spares.
        Assert.Equal("hello 1", await BodyAsync(preview));
        await metrics.WaitForAsync(Idle, v => v == 4, Wait, "the runner's four spares");

        // The dev server closes every connection after its answer, so each request needs a new preview connection.
        for (var i = 2; i <= 4; i++) Assert.Equal($"hello {i}", await BodyAsync(preview));
        await metrics.WaitForAsync("sentryvibe.preview.spares.taken", v => v >= 3, Wait, "the next connections to take spares");
        Assert.Equal(1, metrics.Latest("sentryvibe.preview.tickets.issued"));
        await metrics.WaitForAsync(Idle, v => v == 4, Wait, "the runner to dial replacements");

        // A spare given a project this runner has no dev server for is refused, and the browser is told why.
        using var refused = await GetAsync(unserved).WaitAsync(Wait);
        Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        var page = await refused.Content.ReadAsStringAsync();
        Assert.True(page.Contains("no running dev server"), page);
    }

    [Fact]
    public async Task A_relayed_dev_server_that_starts_serving_has_spares_ready_for_its_first_page_load()
    {
        await using var metrics = BrokerMetrics.Start(_env.Broker.ProcessId);
        var server = Keep(new ClosingDevServer());
        var (project, preview) = await AddProjectAsync("starting");
        var runner = Keep(await InProcessRunner.StartAsync(_env.Broker.LinkUri, "starting",
            configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(server.Port, project))));
        await runner.WaitConnectedAsync();

        // What the dev server manager does once the dev server listens: the relay provider names the preview's address.
        await runner.Services.GetRequiredService<SentryVibe.Runner.Previews.RelayPreviewUrlProvider>()
            .StartAsync(project, preview, server.Port, CancellationToken.None);
        await metrics.WaitForAsync(Idle, v => v == 4, Wait, "the runner's spares before any request");

        Assert.Equal("hello 1", await BodyAsync(preview));
        await metrics.WaitForAsync("sentryvibe.preview.spares.taken", v => v >= 1, Wait, "the first connection to take a spare");
        Assert.Equal(0, metrics.Latest("sentryvibe.preview.tickets.issued"));
    }

    /// <summary>The victim's link (a runner that refuses tickets), a project of its, and one spare the broker holds.</summary>
    private async Task<(TicketRunner Runner, Guid Project, string Preview, ClientWebSocket Spare)> OneSpareAsync(BrokerMetrics? metrics = null)
    {
        var watching = metrics is null ? BrokerMetrics.Start(_env.Broker.ProcessId) : null;
        try
        {
            var runner = TicketRunner.Refusing();
            var link = Keep(await RawLink.ConnectAsync(_env.Broker.LinkUri, _env.VictimToken, runner));
            var reply = await link.HelloAsync("victim");
            var (project, preview) = await AddProjectAsync("victim");
            var spare = await RawLink.ConnectSocketAsync(LinkProtocol.PreviewSocketUri(_env.Broker.LinkUri, reply.PreviewSpareKey!), _env.VictimToken);
            _sockets.Add(spare);
            await (metrics ?? watching)!.WaitForAsync(Idle, v => v == 1, Wait, "the broker to hold the spare");
            return (runner, project, preview, spare);
        }
        finally
        {
            if (watching is not null) await watching.DisposeAsync();
        }
    }

    private T Keep<T>(T item) where T : IAsyncDisposable
    {
        _cleanup.Add(item);
        return item;
    }

    private async Task<string> BodyAsync(string preview)
    {
        using var response = await GetAsync(preview).WaitAsync(Wait);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    private Task<HttpResponseMessage> GetAsync(string preview) => _env.GetAsync(preview, Wait);

    private Task<(Guid Project, string Preview)> AddProjectAsync(string runnerId) => _env.AddRunningAsync(runnerId);

    /// <summary>A dev server that answers each request "hello N" and closes the connection, as one told Connection: close.</summary>
    private sealed class ClosingDevServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task _serving;
        private int _served;

        public ClosingDevServer()
        {
            _listener.Start();
            _serving = ServeAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        private async Task ServeAsync()
        {
            try
            {
                while (true)
                {
                    using var client = await _listener.AcceptTcpClientAsync();
                    var stream = client.GetStream();
                    var buffer = new byte[4096];
                    var request = new StringBuilder();
                    while (!request.ToString().Contains("\r\n\r\n"))
                    {
                        var read = await stream.ReadAsync(buffer);
                        if (read == 0) break;
                        request.Append(Encoding.ASCII.GetString(buffer, 0, read));
                    }
                    var body = $"hello {Interlocked.Increment(ref _served)}";
                    await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}"));
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _serving;
        }
    }
}
