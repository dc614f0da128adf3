// The runner link under load: runner → broker → Postgres → a NOTIFY-woken reader (throughput and latency), and
// 1,000 idle runners on one broker (its memory, command delivery latency). Baselines are measured in the same run.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Nerdbank.Streams;
using Npgsql;
using NpgsqlTypes;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Link;

namespace SentryVibe.Bench;

public static class LinkScenario
{
    internal const string Secret = "bench-secret";

    /// <summary>
    /// The idle-runner lines alone (<c>idle [N] [--broker DLL]</c>): broker memory and command round trip, without the
    /// events part; <c>--broker</c> runs another build of the broker (an A/B of a change, run alternately).
    /// </summary>
    public static Task<List<Figure>> RunIdleAsync(string[] args) => RunAsync(args, idleOnly: true);

    /// <summary>
    /// With <c>SV_BENCH_HOLD=FILE</c>, waits at each point where the broker's memory is measured while FILE exists, so
    /// its memory can be examined (<c>/proc/PID/smaps</c>, <c>dotnet-gcdump</c>); delete FILE to go on.
    /// </summary>
    static async Task HoldAsync()
    {
        if (Environment.GetEnvironmentVariable("SV_BENCH_HOLD") is not { Length: > 0 } hold || !File.Exists(hold)) return;
        Console.Error.WriteLine($"holding while {hold} exists");
        while (File.Exists(hold)) await Task.Delay(500);
    }

    public static async Task<List<Figure>> RunAsync(string[] args, bool idleOnly = false)
    {
        var root = Path.Combine(Path.GetTempPath(), "sv-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var rows = new List<Figure>();

        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        await using var cluster = new PostgresCluster(binaries, Path.Combine(root, "pg"));
        await cluster.StartAsync();
        var db = await CreateDatabaseAsync(cluster, "bench");
        Console.Error.WriteLine($"postgres on {cluster.Port}");

        // Events (sustained rate vs raw INSERT, latency at 500/s, the rate as idle runners join): their own database and broker.
        if (!idleOnly) rows.AddRange(await EventsScenario.RunAsync(cluster, root, EventsScenario.Options.Parse(args)));

        var brokerAt = Array.IndexOf(args, "--broker") is var at and >= 0 && at + 1 < args.Length ? Path.GetFullPath(args[at + 1]) : null;
        using var broker = BrokerProcess.Start(db, Secret, brokerAt);
        await broker.WaitReadyAsync();
        var baselineRss = broker.RssMegabytes();
        Console.Error.WriteLine($"broker RSS with no runners: {baselineRss:0} MB, pid {broker.Pid}");
        await HoldAsync();

        // 3. Idle runners on one broker, as a curve (issue 16.6): at each step its memory, the CPU the idle links cost,
        // and command delivery latency (INSERT + NOTIFY → the runner's ExecuteAsync). The targets apply at 1,000.
        var echo = await WebSocketEchoBaselineAsync(1000);
        var (e50, e99) = Report.Percentiles(echo);
        var idle = new List<IdleRunner>();
        var points = new List<IdlePoint>();
        try
        {
            foreach (var step in IdleSteps(args))
            {
                var connectClock = Stopwatch.StartNew();
                using var gate = new SemaphoreSlim(50);
                var connecting = Enumerable.Range(idle.Count, Math.Max(0, step - idle.Count)).Select(async i =>
                {
                    await gate.WaitAsync();
                    try { return await IdleRunner.ConnectAsync(broker.LinkUri, $"idle-{i:D5}"); }
                    finally { gate.Release(); }
                }).ToList();
                idle.AddRange(await Task.WhenAll(connecting));
                Console.Error.WriteLine($"{idle.Count} idle runners linked in {connectClock.Elapsed.TotalSeconds:0.0} s");

                // What the broker holds once it has settled with its idle links: their heartbeat rounds both ways, and
                // the quiet trim after the burst of their Hellos (10 s of quiet, Broker/IdleMemoryTrim.cs). Read 12 s
                // after linking, the figure was the Hellos' garbage in a full young generation: 165 MB at 1,000 then.
                await Task.Delay(TimeSpan.FromSeconds(30));
                var rss = broker.RssMegabytes();
                Console.Error.WriteLine($"broker RSS: {rss:0} MB (idle baseline {baselineRss:0} MB), pid {broker.Pid}");
                await HoldAsync();
                var targeted = step == 1000;
                // Per link: what the runners added over the same broker before any linked (issue 16.3: ≤ 150 MB, ≤ 50 KB per link).
                var perLinkKb = (rss - baselineRss) * 1024 / Math.Max(1, step);
                rows.Add(new($"Broker RSS with {step:N0} idle runners", $"{rss:0} MB ({perLinkKb:0} KB per link)", $"no runners {baselineRss:0} MB",
                    Report.Ratio(rss, baselineRss), targeted ? "≤ 150 MB, ≤ 50 KB per link" : "—", targeted ? rss <= 150 && perLinkKb <= 50 : null));

                var (c50, c99, q50, q99, d50, d99) = await CommandRoundTripsAsync(db, idle);
                Console.Error.WriteLine($"command: p50 {c50:0.0} ms p99 {c99:0.0} ms (INSERT+NOTIFY alone p50 {q50:0.0} ms p99 {q99:0.0} ms; commit → runner p50 {d50:0.0} ms p99 {d99:0.0} ms)");
                rows.Add(new($"Command round-trip among {step:N0} idle runners (INSERT+NOTIFY → runner)", $"p50 {c50:0.0} ms, p99 {c99:0.0} ms",
                    $"raw WebSocket echo p50 {e50:0.00} ms, p99 {e99:0.00} ms; the INSERT+NOTIFY alone p50 {q50:0.0} ms, p99 {q99:0.0} ms; commit → runner p99 {d99:0.0} ms",
                    $"p99 {Report.Ratio(c99, e99)}", targeted ? "p99 ≤ 10 ms (issue 16.2)" : "—", targeted ? c99 <= 10 : null));

                // What the idle links cost in CPU, both sides, once the commands' code has been compiled (measured
                // before them, the JIT's work of the step before showed as idle cost).
                var window = TimeSpan.FromSeconds(10);
                var (brokerCpu, ownCpu) = (broker.CpuTime(), Process.GetCurrentProcess().TotalProcessorTime);
                await Task.Delay(window);
                var brokerShare = (broker.CpuTime() - brokerCpu) / window;
                var ownShare = (Process.GetCurrentProcess().TotalProcessorTime - ownCpu) / window;
                Console.Error.WriteLine($"idle CPU: broker {brokerShare:P1}, runners {ownShare:P1} of a core");
                rows.Add(new($"CPU of {step:N0} idle links (heartbeats both ways every {LinkProtocol.HeartbeatInterval.TotalSeconds:0} s)",
                    $"broker {brokerShare:P1} of a core", $"the runners' side {ownShare:P1}", "—", "—", null));
                points.Add(new(step, rss, c99, q99, d99, brokerShare));
            }
            if (points.Count > 1) rows.AddRange(Bends(points));
        }
        finally
        {
            await Task.WhenAll(idle.Select(r => r.DisposeAsync().AsTask()));
        }

        try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return rows;
    }

    private sealed record IdlePoint(int Step, double RssMb, double CommandP99, double QueueP99, double DeliveryP99, double BrokerCpu);

    /// <summary>
    /// Where the idle-runner curves bend (issue 16.6): the command round trip at the step its p99 grows most, split into
    /// its two halves (Web's INSERT + NOTIFY, the broker's commit → runner) with the broker's own idle CPU beside it; the
    /// broker's memory as what each added link costs, step by step.
    /// </summary>
    private static IEnumerable<Figure> Bends(List<IdlePoint> points)
    {
        const string command = "Where the command round trip bends as idle runners join (the dominant cost there)";
        if (Report.Bend([.. points.Select(p => p.CommandP99)], lowerIsWorse: false) is { } at)
        {
            var (before, after) = (points[at - 1], points[at]);
            yield return new(command,
                string.Create(CultureInfo.InvariantCulture, $"{before.Step:N0} → {after.Step:N0} idle runners: p99 ×{after.CommandP99 / before.CommandP99:0.00}; p99 ")
                    + Report.Largest("ms", ("commit → runner", after.DeliveryP99 - before.DeliveryP99), ("INSERT + NOTIFY", after.QueueP99 - before.QueueP99)),
                string.Create(CultureInfo.InvariantCulture, $"the broker's idle CPU {before.BrokerCpu:P1} → {after.BrokerCpu:P1} of a core"), "—", "—", null);
        }
        else
        {
            var highest = points.MaxBy(p => p.CommandP99)!;
            yield return new(command, $"no bend: no step from {points[0].Step:N0} to {points[^1].Step:N0} idle runners makes p99 1.2× worse",
                string.Create(CultureInfo.InvariantCulture, $"highest with {highest.Step:N0}: {highest.CommandP99:0.0} ms"), "—", "—", null);
        }

        // What each link added over the step before: a flat line is memory that grows with the links and nothing else.
        var perLink = points.Skip(1).Select((p, i) => (From: points[i].Step, To: p.Step, Kb: (p.RssMb - points[i].RssMb) * 1024 / (p.Step - points[i].Step))).ToList();
        var steepest = perLink.MaxBy(s => s.Kb);
        yield return new("Broker RSS per added idle link, step by step (where it is steepest)",
            string.Join(", ", perLink.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.From:N0} → {s.To:N0}: {s.Kb:0} KB"))),
            string.Create(CultureInfo.InvariantCulture, $"steepest {steepest.From:N0} → {steepest.To:N0}"), "—", "—", null);
    }

    /// <summary>
    /// 300 commands to runners picked at random, one at a time: the whole round trip, the queueing side alone (Web's
    /// part: INSERT + NOTIFY committed) and the broker's part (from that commit to the runner's handler).
    /// </summary>
    private static async Task<(double C50, double C99, double Q50, double Q99, double D50, double D99)> CommandRoundTripsAsync(string db, List<IdleRunner> idle)
    {
        var latencies = new List<double>();
        var queued = new List<double>();
        var delivered = new List<double>();
        // The first 100 are not counted: the first command after the broker starts waits for the JIT (~17 ms against
        // ~1 ms later, measured in the broker), and the delivery path's methods are recompiled (tier 1, in the
        // background, after 30 calls) during the next few dozen; the figure is the broker's steady state, as the events
        // scenario's rounds after their warm-up bursts are.
        for (var i = -100; i < 300; i++)
        {
            var target = idle[Random.Shared.Next(idle.Count)];
            var id = Guid.NewGuid();
            var arrived = target.Expect(id);
            var start = Stopwatch.GetTimestamp();
            await QueueCommandAsync(db, target.RunnerId, id);
            var queuedMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            // Taken in the runner's handler, so the bench's own wake-up after it is not counted.
            var reached = await arrived.WaitAsync(TimeSpan.FromSeconds(10));
            if (i < 0) continue;
            queued.Add(queuedMs);
            latencies.Add(Stopwatch.GetElapsedTime(start, reached).TotalMilliseconds);
            delivered.Add(latencies[^1] - queuedMs);
        }
        var (c50, c99) = Report.Percentiles(latencies);
        var (q50, q99) = Report.Percentiles(queued);
        var (d50, d99) = Report.Percentiles(delivered);
        return (c50, c99, q50, q99, d50, d99);
    }

    /// <summary><c>idle N</c> is one step of N; <c>--idle-steps 1,100,1000,5000</c> (the default) a curve.</summary>
    internal static IReadOnlyList<int> IdleSteps(string[] args)
    {
        if (args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out var single)) return [single];
        return EventsScenario.Options.Parse(args).IdleSteps is { Count: > 0 } steps ? [.. steps.Order()] : [1000];
    }

    internal static async Task<string> CreateDatabaseAsync(PostgresCluster cluster, string name)
    {
        await using (var connection = new NpgsqlConnection(cluster.ConnectionStringFor("postgres")))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }
        var cs = cluster.ConnectionStringFor(name);
        await using var context = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(cs)
            .ConfigureWarnings(w => w.Ignore(Microsoft.EntityFrameworkCore.Diagnostics.RelationalEventId.PendingModelChangesWarning)).Options);
        await context.Database.MigrateAsync();
        return cs;
    }

    private static async Task QueueCommandAsync(string db, string runnerId, Guid id)
    {
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand("""
            INSERT INTO commands ("Id", "RunnerId", "ProjectId", "Type", "Payload", "Status", "Attempts", "CreatedAt", "ExpiresAt")
            VALUES (@id, @runner, @project, 'stop-dev-server', @payload::jsonb, 'queued', 0, clock_timestamp(), now() + interval '1 hour');
            SELECT pg_notify('sentryvibe_commands', @runner);
            """, connection);
        var project = Guid.NewGuid();
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("runner", runnerId);
        insert.Parameters.AddWithValue("project", project);
        insert.Parameters.AddWithValue("payload", JsonSerializer.Serialize<RunnerCommand>(new StopDevServer(project), LinkProtocol.JsonOptions));
        await insert.ExecuteNonQueryAsync();
    }

    /// <summary>Round-trips of a 64-byte message over a plain Kestrel WebSocket on loopback: the floor for any command.</summary>
    private static async Task<List<double>> WebSocketEchoBaselineAsync(int iterations)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.UseWebSockets();
        app.Map("/echo", async (HttpContext context) =>
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[1024];
            while (true)
            {
                var r = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close) break;
                await socket.SendAsync(buffer.AsMemory(0, r.Count), WebSocketMessageType.Binary, true, CancellationToken.None);
            }
        });
        await app.StartAsync();
        var address = app.Urls.First().Replace("http://", "ws://") + "/echo";
        using var client = new ClientWebSocket();
        await client.ConnectAsync(new Uri(address), CancellationToken.None);
        var message = new byte[64];
        var reply = new byte[1024];
        var results = new List<double>(iterations);
        for (var i = 0; i < iterations + 100; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await client.SendAsync(message, WebSocketMessageType.Binary, true, CancellationToken.None);
            await client.ReceiveAsync(reply, CancellationToken.None);
            if (i >= 100) results.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        client.Abort();
        await app.StopAsync();
        return results;
    }
}

/// <summary>The broker as its own process (Release output next to this bench's configuration).</summary>
public sealed class BrokerProcess : IDisposable
{
    private readonly Process _process;

    private BrokerProcess(Process process, int port)
    {
        _process = process;
        LinkUri = new Uri($"ws://127.0.0.1:{port}{LinkProtocol.RunnerPath}");
        Port = port;
    }

    public Uri LinkUri { get; }
    public int Port { get; }
    public int Pid => _process.Id;

    /// <param name="dll">Another build of the broker to run (the events scenario's <c>--against</c>); default this tree's.</param>
    /// <param name="settings">More environment for it (a setting to compare, e.g. <c>Broker__PreviewSparesPerRunner</c>).</param>
    public static BrokerProcess Start(string db, string secret, string? dll = null, IReadOnlyDictionary<string, string>? settings = null)
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "SentryVibe.sln"))) root = Path.GetDirectoryName(root.TrimEnd('/'))!;
        dll ??= Path.Combine(root, "Broker", "bin", configuration, "net10.0", "SentryVibe.Broker.dll");
        var port = PostgresCluster.FreePort();
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        psi.Environment["ConnectionStrings__sentryvibe"] = db + ";Maximum Pool Size=50";
        psi.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        psi.Environment["RUNNER_SHARED_SECRET"] = secret;
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) psi.Environment[key] = value;
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("[broker] " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new BrokerProcess(process, port);
    }

    public async Task WaitReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        for (var i = 0; i < 300; i++)
        {
            try
            {
                if ((await http.GetAsync($"http://127.0.0.1:{Port}/alive")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        throw new TimeoutException("The broker did not start.");
    }

    /// <summary>User and system CPU time the broker has used so far.</summary>
    public TimeSpan CpuTime()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    public double RssMegabytes()
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}

/// <summary>A runner's real link (outbox, client) hosted in this process, with a handler that does nothing.</summary>
public sealed class BenchRunner : IAsyncDisposable
{
    private readonly IHost _host;

    private BenchRunner(IHost host) => _host = host;

    public IEventSink Events => _host.Services.GetRequiredService<IEventSink>();

    public static async Task<BenchRunner> StartAsync(Uri broker, string id, string home, Action<IServiceCollection>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Runner:BrokerUrl"] = broker.ToString(),
            ["Runner:Token"] = LinkScenario.Secret,
            ["Runner:Id"] = id,
            ["Runner:Home"] = home,
        });
        builder.Services.AddRunnerLink();
        builder.Services.AddRunnerWork(builder.Configuration);
        configure?.Invoke(builder.Services);
        var host = builder.Build();
        await host.StartAsync();
        var state = host.Services.GetRequiredService<LinkState>();
        for (var i = 0; i < 300 && state.State != LinkStates.Connected; i++) await Task.Delay(50);
        return new BenchRunner(host);
    }

    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync();
        _host.Dispose();
    }
}

/// <summary>Reads a project's events the way Web does: LISTEN, and on each NOTIFY read the rows after the last id seen.</summary>
public sealed class EventReader : IAsyncDisposable
{
    private readonly NpgsqlConnection _listen;
    private readonly NpgsqlConnection _read;
    private readonly Guid _project;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<double> _latencies = [];
    private readonly Task _loop;
    private Task _waiting = Task.CompletedTask;
    private long _lastId;

    private EventReader(NpgsqlConnection listen, NpgsqlConnection read, Guid project)
    {
        _listen = listen;
        _read = read;
        _project = project;
        _loop = Task.Run(LoopAsync);
    }

    public IReadOnlyCollection<double> LatenciesMs { get { lock (_latencies) return [.. _latencies]; } }

    public static async Task<EventReader> StartAsync(string db, Guid project)
    {
        var listen = new NpgsqlConnection(db);
        await listen.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"LISTEN {SentryVibeDb.EventsChannel}", listen)) await cmd.ExecuteNonQueryAsync();
        var read = new NpgsqlConnection(db);
        await read.OpenAsync();
        return new EventReader(listen, read, project);
    }

    public async Task WaitForAsync(int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (LatenciesMs.Count < count)
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"Reader saw {LatenciesMs.Count} of {count} events.");
            await Task.Delay(5);
        }
    }

    private async Task LoopAsync()
    {
        var wake = new SemaphoreSlim(0);
        _listen.Notification += (_, e) => { if (e.Payload.StartsWith(_project.ToString(), StringComparison.Ordinal)) wake.Release(); };
        _waiting = Task.Run(async () =>
        {
            try { while (!_stop.IsCancellationRequested) await _listen.WaitAsync(_stop.Token); }
            catch (OperationCanceledException) { }
        });
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await wake.WaitAsync(_stop.Token);
                while (wake.CurrentCount > 0) await wake.WaitAsync();
                await using var cmd = new NpgsqlCommand(
                    """SELECT "Id", "Timestamp" FROM events WHERE "ProjectId" = @p AND "Id" > @last ORDER BY "Id" """, _read);
                cmd.Parameters.AddWithValue("p", _project);
                cmd.Parameters.AddWithValue("last", _lastId);
                await using var reader = await cmd.ExecuteReaderAsync(_stop.Token);
                var now = DateTimeOffset.UtcNow;
                while (await reader.ReadAsync(_stop.Token))
                {
                    _lastId = reader.GetInt64(0);
                    var at = reader.GetFieldValue<DateTimeOffset>(1);
                    lock (_latencies) _latencies.Add((now - at).TotalMilliseconds);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _loop; } catch (OperationCanceledException) { }
        try { await _waiting; } catch (Exception) { }
        await _listen.DisposeAsync();
        await _read.DisposeAsync();
    }
}

/// <summary>A minimal runner link for the idle-runner load: Hello, heartbeats, and commands it records and acks.</summary>
public sealed class IdleRunner : IRunnerService, IAsyncDisposable
{
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource<long>> _expected = new();
    private ClientWebSocket _socket = null!;
    private StreamJsonRpc.JsonRpc _rpc = null!;
    private readonly CancellationTokenSource _stop = new();

    private IdleRunner(string runnerId) => RunnerId = runnerId;

    public string RunnerId { get; }

    public static async Task<IdleRunner> ConnectAsync(Uri broker, string runnerId)
    {
        var runner = new IdleRunner(runnerId);
        runner._socket = new ClientWebSocket();
        runner._socket.Options.SetRequestHeader("Authorization", $"Bearer {LinkScenario.Secret}");
        runner._socket.Options.KeepAliveInterval = TimeSpan.Zero; // as the runner's link: its heartbeats keep it alive
        await runner._socket.ConnectAsync(broker, CancellationToken.None);
        var link = new LinkSocket(runner._socket);
        runner._rpc = LinkTransport.CreateRpc(link);
        runner._rpc.AddLocalRpcTarget<IRunnerService>(runner, null);
        var brokerService = runner._rpc.Attach<IBrokerService>();
        runner._rpc.StartListening();
        var reply = await brokerService.HelloAsync(new RunnerHello(LinkProtocol.Version, runnerId, "bench"), CancellationToken.None);
        // The runner's heartbeat, as the real runner keeps it (a broker given with --broker may be older).
        _ = Task.Run(async () =>
        {
            try
            {
                await LinkTransport.RunnerHeartbeatAsync(link, brokerService, reply, () => new Heartbeat(DateTimeOffset.UtcNow), runner._stop.Token);
            }
            catch (Exception) { }
        });
        return runner;
    }

    /// <summary>Completes with the <see cref="Stopwatch"/> timestamp at which the command reached this runner's handler.</summary>
    public Task<long> Expect(Guid id) => _expected.GetOrAdd(id, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public Task<CommandAck> ExecuteAsync(CommandEnvelope envelope, CancellationToken cancellationToken)
    {
        var arrived = Stopwatch.GetTimestamp();
        _expected.GetOrAdd(envelope.Id, _ => new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult(arrived);
        return Task.FromResult(new CommandAck(envelope.Id, true));
    }

    public Task<PreviewChannelAck> OpenPreviewChannelAsync(OpenPreviewChannel request, CancellationToken cancellationToken) =>
        Task.FromResult(new PreviewChannelAck(false, "bench"));

    public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken) =>
        Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _rpc.Dispose();
        _socket.Dispose();
    }
}
