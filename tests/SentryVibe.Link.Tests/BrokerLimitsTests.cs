// The broker's limits played from the attacker's side: oversize Hello fields, a flood of random preview hosts, more
// preview connections than the caps. Each is refused without touching anything else; honest runners carry on.
using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Link;
using SentryVibe.Testing;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

[Collection(LinkCollection.Name)]
public sealed class HelloLimitTests(BrokerEnvironment environment) : IClassFixture<BrokerEnvironment>, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly string _db = environment.Db;
    private readonly BrokerProcess _broker = environment.Broker;
    private InProcessRunner _bystander = null!;

    public async Task InitializeAsync()
    {
        _bystander = await InProcessRunner.StartAsync(_broker.LinkUri, "hello-bystander");
        await _bystander.WaitConnectedAsync();
    }

    public async Task DisposeAsync() => await _bystander.DisposeAsync();

    public static TheoryData<string> Fields => new()
    {
        nameof(RunnerHello.RunnerId), nameof(RunnerHello.Version), nameof(RunnerHello.Name), nameof(RunnerHello.Hostname),
        nameof(RunnerHello.PreviewProvider), nameof(RunnerHello.Capabilities), nameof(RunnerHello.Agents),
    };

    [Theory]
    [MemberData(nameof(Fields))]
    public async Task An_oversize_hello_field_is_refused_by_name_the_link_closed_and_nothing_written(string field)
    {
        var id = "big-" + field.ToLowerInvariant();
        var huge = new string('x', 100_000);
        var hello = new RunnerHello(LinkProtocol.Version, id, "1.0") switch
        {
            var h when field == nameof(RunnerHello.RunnerId) => h with { RunnerId = id + new string('x', LinkLimits.RunnerIdLength) },
            var h when field == nameof(RunnerHello.Version) => h with { Version = huge },
            var h when field == nameof(RunnerHello.Name) => h with { Name = huge },
            var h when field == nameof(RunnerHello.Hostname) => h with { Hostname = huge },
            var h when field == nameof(RunnerHello.PreviewProvider) => h with { PreviewProvider = huge },
            var h when field == nameof(RunnerHello.Capabilities) => h with { Capabilities = [.. Enumerable.Range(0, 5000).Select(i => $"c{i}")] },
            var h => h with { Agents = ["claude-code", huge] },
        };
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);

        var error = await Assert.ThrowsAsync<RemoteInvocationException>(() => link.Broker.HelloAsync(hello, CancellationToken.None));

        Assert.Equal(LinkErrorCodes.InvalidRequest, error.ErrorCode);
        Assert.Contains($"Hello field {field}", error.Message);
        await Eventually.WaitAsync(() => link.Socket.CloseStatus is not null, Wait, "the broker to close the link");
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, link.Socket.CloseStatus);
        Assert.Equal(LinkCloseReasons.HelloOverLimits, link.Socket.CloseStatusDescription);
        Assert.Equal(0L, await Database.ScalarAsync<long>(_db, """SELECT count(*) FROM runners WHERE "Id" LIKE 'big-%'"""));
        await AssertBystanderWorksAsync();
    }

    [Fact]
    public async Task A_refused_hello_always_reports_its_reason_even_when_the_close_overtakes_the_send()
    {
        // The broker answers and closes within a millisecond or two; on a busy machine the runner's own send of the
        // Hello may not have finished by then. Its answer must still be the reason, not a lost connection (it was
        // ConnectionLostException in one to seven of every 400 on a two-core machine, quiet or busy).
        var hello = new RunnerHello(LinkProtocol.Version, "big-" + new string('x', LinkLimits.RunnerIdLength), "1.0");
        var lost = new List<string>();
        for (var i = 0; i < 300; i++)
        {
            await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
            try
            {
                await link.Broker.HelloAsync(hello, CancellationToken.None);
                lost.Add($"{i}: accepted");
            }
            catch (RemoteInvocationException e) when (e.ErrorCode == LinkErrorCodes.InvalidRequest)
            {
            }
            catch (Exception e)
            {
                lost.Add($"{i}: {e.GetType().Name} ({e.InnerException?.GetType().Name})");
            }
        }
        Assert.Empty(lost);
    }

    [Fact]
    public async Task A_hello_at_every_bound_is_accepted()
    {
        await using var link = await RawLink.ConnectAsync(_broker.LinkUri);
        var id = "edge-" + new string('e', LinkLimits.RunnerIdLength - 5);
        var item = new string('a', LinkLimits.ListItemLength);

        var reply = await link.Broker.HelloAsync(new RunnerHello(LinkProtocol.Version, id, new string('1', LinkLimits.VersionLength),
            new string('n', LinkLimits.NameLength), new string('h', LinkLimits.HostnameLength),
            [.. Enumerable.Repeat(item, LinkLimits.ListCount)], [.. Enumerable.Repeat(item, LinkLimits.ListCount)],
            new string('p', LinkLimits.PreviewProviderLength)), CancellationToken.None);

        Assert.Equal(LinkProtocol.Version, reply.ProtocolVersion);
        Assert.Equal(RunnerStatuses.Online, await Database.RunnerStatusAsync(_db, id));
    }

    private async Task AssertBystanderWorksAsync()
    {
        Assert.Equal(LinkStates.Connected, _bystander.State.State);
        var id = await Database.QueueCommandAsync(_db, "hello-bystander", new StartDevServer(Guid.NewGuid()));
        await Eventually.WaitAsync(() => _bystander.Handler.CountOf(id) == 1, Wait, "the bystander to run a command");
    }
}

/// <summary>A broker of its own with a small preview cache, so 10,000 random hosts press on its bound.</summary>
[Collection(LinkCollection.Name)]
public sealed class PreviewFloodTests(PostgresFixture postgres, Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private const string PreviewDomain = "preview.example.test";
    private const int CacheSize = 200;
    private const string Cached = "sentryvibe.preview.targets.cached";
    private string _db = "";
    private BrokerProcess _broker = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        Npgsql.NpgsqlConnection.ClearAllPools(); // the migration's backend exits and reports its own scans now
        _broker = await BrokerProcess.StartAsync(_db, previewDomain: PreviewDomain,
            settings: new Dictionary<string, string> { ["Broker__PreviewTargetCacheSize"] = CacheSize.ToString(System.Globalization.CultureInfo.InvariantCulture) });
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task Ten_thousand_random_preview_hosts_get_not_found_within_the_cache_bound_and_malformed_ones_cost_no_query()
    {
        await using var metrics = BrokerMetrics.Start(_broker.ProcessId);
        // The metric's first sample shows the session is live before the flood (asserted below, after what the database saw).
        await Task.WhenAny(Eventually.WaitAsync(() => metrics.Latest(Cached) is not null, TimeSpan.FromSeconds(20), "the broker's preview cache metric"));
        var scansBefore = await ProjectScansAsync();
        var rssBefore = ResidentKiB();

        var random = new Random(13);
        var hosts = Enumerable.Range(0, 10_000).Select(i => i % 2 == 0 ? WellFormed() : Malformed(random)).ToList();
        var wellFormed = hosts.Count(h => PreviewUrls.IsPreviewId(h));
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 8 }) { Timeout = TimeSpan.FromSeconds(30) };
        var unexpected = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await Parallel.ForEachAsync(hosts, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (label, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_broker.Port}/");
            request.Headers.Host = $"{label}.{PreviewDomain}";
            using var response = await http.SendAsync(request, ct);
            var page = response.Headers.TryGetValues("X-SentryVibe-Preview", out var values) ? values.Single() : null;
            if (response.StatusCode != HttpStatusCode.NotFound || page != "No such preview") unexpected.Enqueue($"{label}: {(int)response.StatusCode} {page}");
        });

        Assert.Empty(unexpected);
        // The database sees one lookup per well-formed label (each is new) and none for the malformed half. It flushes its
        // statistics lazily, and the schema's migration may still add a few scans of its own: a margin far below 5,000.
        long scans = 0;
        var settled = await Task.WhenAny(Eventually.WaitAsync(async () => (scans = await ProjectScansAsync() - scansBefore) >= wellFormed,
            TimeSpan.FromSeconds(30), "the projects table's scan count to settle"));
        Assert.True(settled.IsCompletedSuccessfully && scans < wellFormed + 100,
            $"{scans} lookups of the projects table for {wellFormed} well-formed labels among {hosts.Count}");
        await metrics.WaitForAsync("sentryvibe.preview.lookups", v => v == wellFormed, TimeSpan.FromSeconds(20),
            $"the broker to count {wellFormed} database lookups, one per well-formed label");
        var samples = metrics.Samples(Cached);
        Assert.NotEmpty(samples);
        Assert.True(samples.Max() <= CacheSize, $"the preview cache held {samples.Max()} entries; its bound is {CacheSize}");
        Assert.True(samples.Max() > 0, "the preview cache metric never moved during the flood");
        output.WriteLine($"cache entries: max {samples.Max()} of {CacheSize}; lookups {wellFormed}; projects scans {scans}; " +
                         $"broker RSS {rssBefore} KiB before, {ResidentKiB()} KiB after");
    }

    [Fact]
    public async Task A_broker_that_goes_quiet_after_a_flood_gives_back_the_memory_the_flood_left_committed()
    {
        // What the GC holds committed, published by the runtime at each collection: a quiet broker collects no more on
        // its own, so a lower value after the flood is the broker trimming (docs/architecture.md, decision 4).
        const string Committed = "dotnet.gc.last_collection.memory.committed_size";
        await using var runtime = BrokerMetrics.Start(_broker.ProcessId, "System.Runtime");
        await Eventually.WaitAsync(() => runtime.Latest(Committed) is not null, TimeSpan.FromSeconds(20), "the broker's GC metrics");

        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = 8 }) { Timeout = TimeSpan.FromSeconds(30) };
        await Parallel.ForEachAsync(Enumerable.Range(0, 10_000), new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_broker.Port}/");
            request.Headers.Host = $"{WellFormed()}.{PreviewDomain}";
            using var response = await http.SendAsync(request, ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        });
        var flood = runtime.Samples(Committed);
        Assert.NotEmpty(flood);
        var peak = flood.Max();

        // Trimmed once the broker has been quiet for 10 s; the young generation and the emptied regions go. Awaited after
        // the figures are written, so a failure still shows them.
        var trimmed = await Task.WhenAny(runtime.WaitForAsync(Committed, v => v <= 0.75 * peak, TimeSpan.FromSeconds(30),
            "the quiet broker to give back the memory the flood left committed"));
        output.WriteLine($"allocated by the broker: {runtime.Latest("dotnet.gc.heap.total_allocated") / 1048576:0} MB since it started; " +
                         $"GC committed: peak during the flood {peak / 1048576:0.0} MB, now {runtime.Latest(Committed) / 1048576:0.0} MB; " +
                         $"broker RSS {ResidentKiB()} KiB");
        await trimmed;
    }

    /// <summary>For the test's output only (not asserted: RSS moves with the GC's whims).</summary>
    private long ResidentKiB() =>
        File.ReadLines($"/proc/{_broker.ProcessId}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture))
            .FirstOrDefault();

    private static string WellFormed() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>A single DNS label that is not a preview id: wrong length, or not lower-case hex.</summary>
    private static string Malformed(Random random)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-";
        while (true)
        {
            var length = random.Next(1, 64);
            var label = new string([.. Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)])]);
            if (label[0] != '-' && !PreviewUrls.IsPreviewId(label)) return label;
        }
    }

    private async Task<long> ProjectScansAsync() => await Database.ScalarAsync<long>(_db,
        """SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'projects'""");
}

/// <summary>A broker with small channel caps (3 per preview, 5 per runner), a dev server that can hold requests, two runners.</summary>
[Collection(LinkCollection.Name)]
public sealed class PreviewChannelCapTests(PostgresFixture postgres) : IAsyncLifetime
{
    private const string PreviewDomain = "preview.example.test";
    private const int PerPreview = 3;
    private const int PerRunner = 5;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);
    private readonly Dictionary<string, Guid> _projects = [];
    private readonly Dictionary<string, string> _previews = [];
    private string _db = "";
    private BrokerProcess _broker = null!;
    private WebApplication _dev = null!;
    private int _devPort;
    private int _held;
    private TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private InProcessRunner _runner = null!;
    private InProcessRunner _other = null!;

    public async Task InitializeAsync()
    {
        _db = await postgres.CreateDatabaseAsync();
        await Database.MigrateAsync(_db);
        _broker = await BrokerProcess.StartAsync(_db, previewDomain: PreviewDomain, settings: new Dictionary<string, string>
        {
            ["Broker__MaxPreviewChannelsPerPreview"] = PerPreview.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker__MaxPreviewChannelsPerRunner"] = PerRunner.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

        var app = WebApplication.CreateSlimBuilder();
        app.WebHost.UseUrls("http://127.0.0.1:0");
        _dev = app.Build();
        _dev.MapGet("/hold", async (HttpContext c) =>
        {
            Interlocked.Increment(ref _held);
            await _gate.Task.WaitAsync(c.RequestAborted);
            return "released";
        });
        // Closes its connection after answering, so the relay's channel for it closes too.
        _dev.MapGet("/close", (HttpContext c) =>
        {
            c.Response.Headers.Connection = "close";
            return "closed";
        });
        _dev.MapGet("/", () => "hi");
        await _dev.StartAsync();
        _devPort = new Uri(_dev.Urls.First()).Port;

        // "refused" is assigned to the runner but has no dev server there: the runner refuses its channels.
        foreach (var (name, runner) in new[] { ("busy", "capped"), ("calm", "capped"), ("refused", "capped"), ("elsewhere", "other") })
        {
            _projects[name] = await AddProjectAsync(name, runner);
        }
        var served = new[] { _projects["busy"], _projects["calm"], _projects["elsewhere"] };
        _runner = await InProcessRunner.StartAsync(_broker.LinkUri, "capped", configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(_devPort, served)));
        _other = await InProcessRunner.StartAsync(_broker.LinkUri, "other", configure: s => s.AddSingleton<IPreviewTargets>(new DevServersAt(_devPort, served)));
        await _runner.WaitConnectedAsync();
        await _other.WaitConnectedAsync();
    }

    public async Task DisposeAsync()
    {
        _gate.TrySetResult();
        await _runner.DisposeAsync();
        await _other.DisposeAsync();
        await _dev.DisposeAsync();
        await _broker.DisposeAsync();
    }

    [Fact]
    public async Task Connections_over_the_per_preview_cap_get_503_with_retry_after_and_other_previews_keep_working()
    {
        using var http = NewClient();
        var held = Enumerable.Range(0, PerPreview).Select(_ => GetAsync(http, "busy", "/hold")).ToList();
        try
        {
            await Eventually.WaitAsync(() => Volatile.Read(ref _held) == PerPreview, Wait, $"{PerPreview} requests held by the dev server");

            using var extra = await GetAsync(http, "busy", "/hold").WaitAsync(Wait);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, extra.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(3), extra.Headers.RetryAfter?.Delta);
            Assert.Equal("Too many connections", extra.Headers.GetValues("X-SentryVibe-Preview").Single());
            Assert.Contains($"This preview already has {PerPreview} preview connections open.", await extra.Content.ReadAsStringAsync());

            using var calm = await GetAsync(http, "calm", "/").WaitAsync(Wait);
            Assert.Equal("hi", await calm.Content.ReadAsStringAsync());
        }
        finally
        {
            _gate.TrySetResult();
        }
        foreach (var response in await Task.WhenAll(held))
        {
            Assert.Equal("released", await response.Content.ReadAsStringAsync());
            response.Dispose();
        }
    }

    [Fact]
    public async Task Connections_over_the_per_runner_cap_get_503_and_another_runners_preview_keeps_working()
    {
        using var http = NewClient();
        var held = Enumerable.Range(0, PerPreview).Select(_ => GetAsync(http, "busy", "/hold"))
            .Concat(Enumerable.Range(0, PerRunner - PerPreview).Select(_ => GetAsync(http, "calm", "/hold"))).ToList();
        try
        {
            await Eventually.WaitAsync(() => Volatile.Read(ref _held) == PerRunner, Wait, $"{PerRunner} requests held by the dev server");

            using var extra = await GetAsync(http, "calm", "/hold").WaitAsync(Wait);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, extra.StatusCode);
            Assert.NotNull(extra.Headers.RetryAfter);
            Assert.Contains($"This runner already has {PerRunner} preview connections open.", await extra.Content.ReadAsStringAsync());

            using var elsewhere = await GetAsync(http, "elsewhere", "/").WaitAsync(Wait);
            Assert.Equal("hi", await elsewhere.Content.ReadAsStringAsync());
        }
        finally
        {
            _gate.TrySetResult();
        }
        foreach (var response in await Task.WhenAll(held))
        {
            Assert.Equal("released", await response.Content.ReadAsStringAsync());
            response.Dispose();
        }
    }

    [Fact]
    public async Task Channel_slots_come_back_on_every_path_and_the_open_count_returns_to_zero()
    {
        await using var metrics = BrokerMetrics.Start(_broker.ProcessId);
        using var http = NewClient();

        // Many more than either cap, each on a channel that closes after it (or that the runner refuses): a slot kept
        // by any of them would turn later ones into 503s.
        var outcomes = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, 60), new ParallelOptions { MaxDegreeOfParallelism = PerPreview - 1 }, async (i, _) =>
        {
            var (preview, path) = (i % 3) switch { 0 => ("busy", "/close"), 1 => ("calm", "/close"), _ => ("refused", "/") };
            using var response = await GetAsync(http, preview, path);
            outcomes.Add($"{preview} {(int)response.StatusCode}");
        });

        Assert.Equal(20, outcomes.Count(o => o == "busy 200"));
        Assert.Equal(20, outcomes.Count(o => o == "calm 200"));
        Assert.Equal(20, outcomes.Count(o => o == "refused 502"));
        await metrics.WaitForAsync("sentryvibe.preview.channels.open", v => v == 0, Wait, "no preview channel to be open");
    }

    private HttpClient NewClient() =>
        new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(60) };

    private Task<HttpResponseMessage> GetAsync(HttpClient http, string project, string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"http://127.0.0.1:{_broker.Port}{path}");
        request.Headers.Host = $"{_previews[project]}.{PreviewDomain}";
        return http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    private async Task<Guid> AddProjectAsync(string name, string runnerId)
    {
        var id = Guid.NewGuid();
        _previews[name] = Guid.NewGuid().ToString("N");
        await using var db = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(_db).Options);
        db.Projects.Add(new Project
        {
            Id = id, Slug = "cap-" + name, Name = name, Prompt = "p", TemplateId = "vite-react", Agent = "none",
            RunnerId = runnerId, Status = ProjectStatuses.Ready, PreviewId = _previews[name],
            DevServer = new DevServerState { Status = DevServerStatuses.Running, Port = _devPort, Provider = "relay" },
            CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
        });
        await db.SaveChangesAsync();
        return id;
    }
}
