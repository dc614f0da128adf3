using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Link;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class TwoBrokerTests(PostgresFixture postgres) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private const string PreviewDomain = "preview.example.test";
    private string _db = "";
    private BrokerProcess _a = null!;
    private BrokerProcess _b = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        // Two replicas behind one hostname: the same preview domain on both.
        _a = await BrokerProcess.StartAsync(_db, id: "broker-a", previewDomain: PreviewDomain);
        _b = await BrokerProcess.StartAsync(_db, id: "broker-b", previewDomain: PreviewDomain);
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
    }

    [Fact]
    public async Task Commands_reach_the_runner_through_whichever_broker_holds_its_socket()
    {
        var home = Paths.TempDirectory("scale");
        Guid viaA, viaB;
        await using (var runner = await InProcessRunner.StartAsync(_a.LinkUri, "roaming", home))
        {
            await runner.WaitConnectedAsync();
            Assert.Equal("broker-a", await Database.ScalarAsync<string>(_db, """SELECT "BrokerId" FROM runners WHERE "Id" = 'roaming'"""));
            viaA = await Database.QueueCommandAsync(_db, "roaming", new StartDevServer(Guid.NewGuid()));
            await Eventually.WaitAsync(async () => await Database.CommandStatusAsync(_db, viaA) == CommandStatuses.Acked, Wait, "delivery through broker A");
            Assert.Equal(1, runner.Handler.CountOf(viaA));
        }

        await using var moved = await InProcessRunner.StartAsync(_b.LinkUri, "roaming", home);
        await moved.WaitConnectedAsync();
        viaB = await Database.QueueCommandAsync(_db, "roaming", new StartDevServer(Guid.NewGuid()));
        await Eventually.WaitAsync(async () => await Database.CommandStatusAsync(_db, viaB) == CommandStatuses.Acked, Wait, "delivery through broker B");

        Assert.Equal(1, moved.Handler.CountOf(viaB));
        Assert.Equal(0, moved.Handler.CountOf(viaA));
        Assert.Equal("broker-a", await Database.ScalarAsync<string>(_db, """SELECT "DeliveredBy" FROM commands WHERE "Id" = @id""", ("id", viaA)));
        Assert.Equal("broker-b", await Database.ScalarAsync<string>(_db, """SELECT "DeliveredBy" FROM commands WHERE "Id" = @id""", ("id", viaB)));
    }
    [Fact]
    public async Task A_preview_asked_of_either_replica_reaches_the_dev_server_through_the_one_holding_the_runner()
    {
        await using var dev = await EchoDevServerAsync();
        var previewId = await PreviewOnRunnerAsync(dev.Project, "previewer", storedPort: dev.Port);
        await using var runner = await InProcessRunner.StartAsync(_a.LinkUri, "previewer",
            configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(dev.Port, dev.Project)));
        await runner.WaitConnectedAsync();

        foreach (var (broker, path) in new[] { (_a, "held"), (_b, "forwarded") })
        {
            Assert.Equal($"dev server says hi to localhost at /{path}", await GetPreviewAsync(broker, previewId, path));
        }
    }

    [Fact]
    public async Task A_preview_reaches_the_port_the_runner_knows_and_the_stored_port_does_not_steer_it()
    {
        // The project row says an older port (as after a restart whose port-detected is not in yet): the relay does not
        // read it, the runner pipes the channel to where its dev server listens, and the Host carries no port.
        await using var dev = await EchoDevServerAsync();
        var previewId = await PreviewOnRunnerAsync(dev.Project, "steered", storedPort: PostgresCluster.FreePort());
        await using var runner = await InProcessRunner.StartAsync(_a.LinkUri, "steered",
            configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(dev.Port, dev.Project)));
        await runner.WaitConnectedAsync();

        Assert.Equal("dev server says hi to localhost at /page", await GetPreviewAsync(_a, previewId, "page"));
    }

    [Fact]
    public async Task Behind_one_round_robin_balancer_every_preview_socket_reaches_the_replica_that_asked_for_it()
    {
        // One hostname for both replicas: the runner's link lands on one, and each preview socket it dials (a ticket's or
        // a spare's) on whichever the balancer picks next, so half of them at the replica that does not hold the ticket.
        await using var dev = await EchoDevServerAsync();
        var previewId = await PreviewOnRunnerAsync(dev.Project, "balanced", storedPort: dev.Port);
        await using var balancer = new RoundRobinBalancer(_a.Port, _b.Port);
        await using var runner = await InProcessRunner.StartAsync(new Uri($"ws://127.0.0.1:{balancer.Port}{LinkProtocol.RunnerPath}"), "balanced",
            configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(dev.Port, dev.Project)));
        await runner.WaitConnectedAsync();

        // The dev server closes each connection after its answer: every request needs a new preview socket.
        for (var i = 0; i < 8; i++)
        {
            var broker = i % 2 == 0 ? _a : _b;
            Assert.Equal($"dev server says hi to localhost at /page{i}", await GetPreviewAsync(broker, previewId, $"page{i}?close"));
        }
        Assert.True(balancer.Passed.All(n => n >= 3), $"dials per replica: {string.Join(", ", balancer.Passed)}");
    }

    [Fact]
    public async Task A_ticket_dialled_at_the_other_replica_is_passed_on_once_under_the_same_rules()
    {
        var (_, victim) = await Tokens.CreateAsync(_db, "tagged");
        var (_, attacker) = await Tokens.CreateAsync(_db, "tagger");
        var tries = new Dictionary<string, HttpStatusCode>();
        var runner = new TicketRunner(async ticket =>
        {
            var atB = LinkProtocol.PreviewSocketUri(_b.LinkUri, ticket);
            tries["another runner's token, at B"] = await RawLink.TryUpgradeAsync(atB, attacker);
            tries["already passed on once, at B"] = await TryUpgradeRelayedAsync(atB, victim);
            tries["the link's token, at B"] = await RawLink.TryUpgradeAsync(atB, victim);
            tries["reused, at A"] = await RawLink.TryUpgradeAsync(LinkProtocol.PreviewSocketUri(_a.LinkUri, ticket), victim);
            return new PreviewChannelAck(true);
        });
        await using var link = await RawLink.ConnectAsync(_a.LinkUri, victim, runner);
        await link.HelloAsync("tagged");
        var previewId = await PreviewOnRunnerAsync(Guid.NewGuid(), "tagged", storedPort: 1);

        using var http = new HttpClient { Timeout = Wait };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_a.Port}/");
        request.Headers.Host = $"{previewId}.{PreviewDomain}";
        using var response = await http.SendAsync(request);

        Assert.Equal(HttpStatusCode.SwitchingProtocols, tries["the link's token, at B"]);
        foreach (var refused in new[] { "another runner's token, at B", "already passed on once, at B", "reused, at A" })
        {
            Assert.True(tries[refused] == HttpStatusCode.NotFound, $"{refused}: {tries[refused]}");
        }
    }

    [Fact]
    public async Task A_flood_of_made_up_tickets_at_a_replica_is_refused_and_reads_the_replica_list_at_most_once_a_second()
    {
        // A live runner on A, so B's list of replicas has something to find; then 300 dials at B with tickets no one issued.
        await using var runner = await InProcessRunner.StartAsync(_a.LinkUri, "flooded");
        await runner.WaitConnectedAsync();
        await using var metrics = BrokerMetrics.Start(_b.ProcessId);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var answers = new List<HttpStatusCode>();
        for (var i = 0; i < 300; i++) answers.Add(await RawLink.TryUpgradeAsync(LinkProtocol.PreviewSocketUri(_b.LinkUri, Previews.MadeUpTicket()), Database.SharedSecret));
        var seconds = clock.Elapsed.TotalSeconds;

        Assert.All(answers, status => Assert.Equal(HttpStatusCode.NotFound, status));
        await metrics.WaitForAsync("sentryvibe.preview.replica_reads", v => v >= 1, Wait, "B's replica reads metric");
        var reads = metrics.Latest("sentryvibe.preview.replica_reads");
        Assert.True(reads <= Math.Ceiling(seconds) + 1, $"{reads} reads of the replica list for 300 made-up tickets in {seconds:0.0} s");
    }

    private static async Task<HttpStatusCode> TryUpgradeRelayedAsync(Uri uri, string token)
    {
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        socket.Options.SetRequestHeader("X-SentryVibe-Relayed-By", "broker-c");
        try
        {
            await socket.ConnectAsync(uri, CancellationToken.None);
            socket.Abort();
            return HttpStatusCode.SwitchingProtocols;
        }
        catch (System.Net.WebSockets.WebSocketException)
        {
            return socket.HttpStatusCode;
        }
    }

    private sealed record EchoDevServer(WebApplication App, int Port, Guid Project) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => App.DisposeAsync();
    }

    private static async Task<EchoDevServer> EchoDevServerAsync()
    {
        var app = WebApplication.CreateSlimBuilder();
        app.WebHost.UseUrls("http://127.0.0.1:0");
        var dev = app.Build();
        dev.MapGet("/{**path}", (HttpContext c) =>
        {
            if (c.Request.Query.ContainsKey("close")) c.Response.Headers.Connection = "close"; // the next request needs a new connection
            return $"dev server says hi to {c.Request.Host} at /{c.Request.RouteValues["path"]}";
        });
        await dev.StartAsync();
        return new EchoDevServer(dev, new Uri(dev.Urls.First()).Port, Guid.NewGuid());
    }

    /// <summary>A running project of <paramref name="runnerId"/> whose row holds <paramref name="storedPort"/>; returns its preview id.</summary>
    private async Task<string> PreviewOnRunnerAsync(Guid project, string runnerId, int storedPort)
    {
        var previewId = Guid.NewGuid().ToString("N");
        await using var db = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(_db).Options);
        db.Projects.Add(new Project
        {
            Id = project, Slug = $"{runnerId}-preview", Name = $"{runnerId} preview", Prompt = "p", TemplateId = "vite-react", Agent = "none",
            RunnerId = runnerId, Status = ProjectStatuses.Ready, PreviewId = previewId,
            DevServer = new DevServerState { Status = DevServerStatuses.Running, Port = storedPort, Provider = "relay" },
            CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
        });
        await db.SaveChangesAsync();
        return previewId;
    }

    private static async Task<string> GetPreviewAsync(BrokerProcess broker, string previewId, string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{broker.Port}/{path}");
        request.Headers.Host = $"{previewId}.{PreviewDomain}";
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{broker.Id}: {(int)response.StatusCode} {body}");
        return body;
    }
}

[Collection(LinkCollection.Name)]
public sealed class LivenessTests(BrokerEnvironment environment) : IClassFixture<BrokerEnvironment>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _db = environment.Db;

    [Fact]
    public async Task A_runner_whose_process_died_is_marked_offline_within_15_seconds()
    {
        await using var runner = RunnerProcess.Start(environment.Broker.LinkUri, "doomed", Paths.TempDirectory("doomed"));
        await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, "doomed") == RunnerStatuses.Online, TimeSpan.FromSeconds(30), "the runner to come online");

        runner.Kill();

        await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, "doomed") == RunnerStatuses.Offline, LinkProtocol.OfflineAfter, "the runner to be marked offline");
    }

    [Fact]
    public async Task Runners_left_online_by_a_broker_that_died_are_swept_offline()
    {
        await Database.ExecuteAsync(_db, """
            INSERT INTO runners ("Id", "Status", "LastSeenAt", "BrokerId", "Capabilities", "Agents", "CommittedSeq", "CreatedAt")
            VALUES ('orphan', 'online', now() - interval '20 seconds', 'dead-broker', '[]', '[]', 0, now())
            """);

        await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, "orphan") == RunnerStatuses.Offline, LinkProtocol.OfflineAfter, "the sweeper");
    }

    [Fact]
    public async Task Runners_that_closed_their_links_stay_offline_through_the_next_liveness_refresh()
    {
        // The liveness pass collects the links it pinged over one heartbeat interval and refreshes them at its end; a
        // runner that closed in between was marked offline at once and must not be refreshed back to online.
        await using var witness = await RawLink.ConnectAsync(environment.Broker.LinkUri);
        await witness.HelloAsync("witness");
        var ids = Enumerable.Range(0, 10).Select(i => $"leaver-{i}-{Guid.NewGuid():N}"[..16]).ToList();
        var links = new List<RawLink>();
        foreach (var id in ids)
        {
            var link = await RawLink.ConnectAsync(environment.Broker.LinkUri);
            await link.HelloAsync(id);
            links.Add(link);
        }
        await NextRefreshAsync();
        // Close in the middle of a pass, after some of the links' slices were pinged (the delay picks that moment; it
        // waits for nothing).
        await Task.Delay(LinkProtocol.HeartbeatInterval / 2);
        foreach (var link in links) await link.DisposeAsync();
        foreach (var id in ids)
        {
            await Eventually.WaitAsync(async () => await Database.RunnerStatusAsync(_db, id) == RunnerStatuses.Offline, Wait, $"{id} to be marked offline");
        }

        await NextRefreshAsync();

        foreach (var id in ids) Assert.Equal((id, RunnerStatuses.Offline), (id, await Database.RunnerStatusAsync(_db, id)));
        Assert.Equal(RunnerStatuses.Online, await Database.RunnerStatusAsync(_db, "witness"));
    }

    [Fact]
    public async Task A_runner_sending_its_heartbeats_is_not_pinged_and_one_that_stops_is_pinged_and_kept_by_its_answers()
    {
        var pings = new PingCounter();
        await using var link = await RawLink.ConnectAsync(environment.Broker.LinkUri, runner: pings);
        await link.HelloAsync("beating");

        // Two of the broker's heartbeat intervals with the runner's own heartbeat every second: nothing to ask it.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < LinkProtocol.HeartbeatInterval * 2.5)
        {
            await link.Link.SendHeartbeatAsync();
            await Task.Delay(TimeSpan.FromSeconds(1)); // the runner's pace, not a wait for anything
        }
        Assert.Equal(0, pings.Count);

        // Quiet now: the broker asks at each of its visits (every interval, not every other one), and the answers keep
        // the link past the 10 s a silent link is allowed.
        await Eventually.WaitAsync(() => pings.Count >= 3, Wait + Wait, "the broker to ping the quiet runner three times");
        var span = pings.Times[2] - pings.Times[0];
        Assert.True(span < LinkProtocol.HeartbeatInterval * 3, $"three pings took {span.TotalSeconds:0.0} s: the quiet runner was not pinged at every visit");
        Assert.Equal(System.Net.WebSockets.WebSocketState.Open, link.Socket.State);
        Assert.Equal(RunnerStatuses.Online, await Database.RunnerStatusAsync(_db, "beating"));

        // Heartbeats again, one an interval (as runners send them), each arriving a moment after the broker's visit: the
        // worst phase for the broker's look, which finds the last one almost an interval old at every visit. Answers to
        // pings do not count as the runner speaking, so the broker need not cut its limit short and ping these.
        // The pings go on at each visit until then; the last one before the first heartbeat is in by the time it goes.
        var beat = pings.Times[^1] + LinkProtocol.HeartbeatInterval + TimeSpan.FromMilliseconds(300);
        await pings.PaceAsync(beat);
        var before = pings.Count;
        for (var i = 0; i < 3; i++, beat += LinkProtocol.HeartbeatInterval)
        {
            await pings.PaceAsync(beat);
            await link.Link.SendHeartbeatAsync();
        }
        await pings.PaceAsync(beat); // past the third visit after the first heartbeat
        Assert.Equal(before, pings.Count);
        Assert.Equal(System.Net.WebSockets.WebSocketState.Open, link.Socket.State);
    }

    private sealed class PingCounter : IRunnerService
    {
        private readonly List<TimeSpan> _times = [];
        private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
        public int Count { get { lock (_times) return _times.Count; } }
        public IReadOnlyList<TimeSpan> Times { get { lock (_times) return [.. _times]; } }

        /// <summary>Waits until <paramref name="time"/> on this counter's clock: the runner's pace, not a wait for anything.</summary>
        public Task PaceAsync(TimeSpan time) => Task.Delay(time > _clock.Elapsed ? time - _clock.Elapsed : TimeSpan.Zero);
        public Task<CommandAck> ExecuteAsync(CommandEnvelope envelope, CancellationToken cancellationToken) =>
            Task.FromResult(new CommandAck(envelope.Id, true));
        public Task<PreviewChannelAck> OpenPreviewChannelAsync(OpenPreviewChannel request, CancellationToken cancellationToken) =>
            Task.FromResult(new PreviewChannelAck(false, "none"));
        public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken)
        {
            lock (_times) _times.Add(_clock.Elapsed);
            return Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow));
        }
    }

    /// <summary>Waits for the liveness pass to refresh LastSeenAt of the held "witness" runner once more.</summary>
    private async Task NextRefreshAsync()
    {
        var seen = await Database.ScalarAsync<DateTime>(_db, """SELECT "LastSeenAt" FROM runners WHERE "Id" = 'witness'""");
        await Eventually.WaitAsync(async () => await Database.ScalarAsync<DateTime>(_db, """SELECT "LastSeenAt" FROM runners WHERE "Id" = 'witness'""") > seen,
            Wait, "the next liveness refresh");
    }

    [Fact]
    public async Task A_linked_runner_stays_online_and_its_last_seen_time_moves()
    {
        await using var runner = await InProcessRunner.StartAsync(environment.Broker.LinkUri, "steady");
        await runner.WaitConnectedAsync();
        var linked = runner.State.Since;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var first = await Database.ScalarAsync<DateTime>(_db, """SELECT "LastSeenAt" FROM runners WHERE "Id" = 'steady'""");

        await Eventually.WaitAsync(async () => await Database.ScalarAsync<DateTime>(_db, """SELECT "LastSeenAt" FROM runners WHERE "Id" = 'steady'""") > first,
            LinkProtocol.OfflineAfter, "LastSeenAt to be refreshed");
        Assert.Equal(RunnerStatuses.Online, await Database.RunnerStatusAsync(_db, "steady"));

        // And on the link it made: its heartbeats (empty messages the broker answers) keep it past the two intervals in
        // which a runner gives up a link whose heartbeat nothing followed. Ends early if the link is remade.
        await Eventually.WaitAsync(() => clock.Elapsed > LinkProtocol.HeartbeatInterval * 4.5 || runner.State.Since != linked,
            LinkProtocol.HeartbeatInterval * 6, "four and a half heartbeat intervals on one link");
        Assert.Equal((LinkStates.Connected, linked), (runner.State.State, runner.State.Since));
    }
}
