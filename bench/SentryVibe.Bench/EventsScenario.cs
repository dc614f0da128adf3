// Events runner → broker → Postgres → a NOTIFY-woken reader: the sustained rate next to a raw INSERT of the same rows
// measured in the same rounds, publish → visible latency at a steady 500/s, and the sustained rate as idle runners are
// added (how the cost grows). `--against <SentryVibe.Broker.dll>` measures a second broker build in the same run,
// rounds alternating, so an intake change is compared on the same machine at the same moment.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;

namespace SentryVibe.Bench;

public static class EventsScenario
{
    private const int Burst = 50_000;
    private const int Rounds = 5;
    /// <summary>Bursts before the measured rounds: the JIT tiers the broker's intake path up over about three.</summary>
    private const int WarmUpBursts = 3;

    public sealed record Options(string? Against, IReadOnlyList<int> IdleSteps, TimeSpan DbRoundTrip = default)
    {
        /// <summary><c>--against DLL</c>, <c>--idle-steps 1,100,1000,5000</c> (the default), <c>--db-rtt MS</c> (none).</summary>
        public static Options Parse(string[] args)
        {
            string? against = null;
            var dbRoundTrip = TimeSpan.Zero;
            IReadOnlyList<int> steps = [1, 100, 1000, 5000];
            for (var i = 0; i < args.Length; i++)
            {
                if (args[i] == "--against" && i + 1 < args.Length) against = Path.GetFullPath(args[++i]);
                else if (args[i] == "--db-rtt" && i + 1 < args.Length) dbRoundTrip = TimeSpan.FromMilliseconds(double.Parse(args[++i], CultureInfo.InvariantCulture));
                else if (args[i] == "--idle-steps" && i + 1 < args.Length)
                {
                    steps = [.. args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
                }
            }
            return new(against, steps, dbRoundTrip);
        }
    }

    /// <summary>The events figures alone (<c>events [--against DLL] [--idle-steps 1,100,1000,5000]</c>), on a Postgres of their own.</summary>
    public static async Task<List<Figure>> RunAsync(string[] args)
    {
        var root = Path.Combine(Path.GetTempPath(), "sv-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        try
        {
            await using var cluster = new PostgresCluster(binaries, Path.Combine(root, "pg"));
            await cluster.StartAsync();
            return await RunAsync(cluster, root, Options.Parse(args));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    public static async Task<List<Figure>> RunAsync(PostgresCluster cluster, string root, Options options)
    {
        var rows = new List<Figure>();
        var db = await LinkScenario.CreateDatabaseAsync(cluster, "events");
        // Everything that talks to the database (brokers, the raw INSERT, the reader) goes through the delay alike.
        await using var remote = options.DbRoundTrip > TimeSpan.Zero ? DelayProxy.Start(cluster.Port, options.DbRoundTrip) : null;
        if (remote is not null)
        {
            db = new NpgsqlConnectionStringBuilder(db) { Port = remote.Port }.ConnectionString;
            rows.Add(new("Database round trip added (a relay delaying each direction, `--db-rtt`)", $"{options.DbRoundTrip.TotalMilliseconds:0.#} ms", "—", "—", "—", null));
        }
        var builds = new List<(string Name, BrokerProcess Broker)> { ("", BrokerProcess.Start(db, LinkScenario.Secret)) };
        if (options.Against is { } dll) builds.Add(($" ({Path.GetFileName(Path.GetDirectoryName(dll))} build)", BrokerProcess.Start(db, LinkScenario.Secret, dll)));
        try
        {
            foreach (var (_, broker) in builds) await broker.WaitReadyAsync();

            // 0. Warm-up, not counted: a broker runs for days, and its first 150,000 events after a start go at about half
            // the later rate while the JIT compiles and tiers the intake path (its CPU per event falls from ~50 µs to ~7).
            // The first burst of each is printed, so the cold figure stays in view.
            (double Rate, CpuSample Cpu) cold = default;
            for (var warm = 0; warm < WarmUpBursts; warm++)
            {
                var rawBurst = await RawInsertRateAsync(db, cluster.Port, Burst);
                if (warm == 0) cold = rawBurst;
                Console.Error.WriteLine($"warm-up {warm}: raw {rawBurst.Rate:0}/s ({rawBurst.Cpu.PerEvent(Burst)})");
                for (var b = 0; b < builds.Count; b++)
                {
                    var first = await SustainedAsync(db, cluster.Port, builds[b].Broker, $"warm-{b}-{warm}", root);
                    Console.Error.WriteLine($"warm-up {warm}: broker{builds[b].Name} {first.Rate:0}/s ({first.Cpu.PerEvent(Burst)})");
                    if (warm == 0 && b == 0)
                    {
                        rows.Add(new("Events, the first burst after the broker started (cold JIT, not counted)", $"{first.Rate:N0} events/s",
                            $"raw INSERT {cold.Rate:N0} events/s", Report.Ratio(first.Rate, cold.Rate), "—", null));
                    }
                }
            }

            // 1. Sustained: a burst of 50,000 published as fast as the outbox takes them, until the reader saw all; the raw
            // INSERT of the same rows in the same round is the floor's stand-in.
            var raw = new List<(double Rate, CpuSample Cpu)>();
            var runs = builds.Select(_ => new List<(double Rate, CpuSample Cpu)>()).ToList();
            for (var round = 0; round < Rounds; round++)
            {
                raw.Add(await RawInsertRateAsync(db, cluster.Port, Burst));
                for (var b = 0; b < builds.Count; b++)
                {
                    // Alternate which build goes first so a drifting machine load does not favour one.
                    var which = round % 2 == 0 ? b : builds.Count - 1 - b;
                    runs[which].Add(await SustainedAsync(db, cluster.Port, builds[which].Broker, $"burst-{which}-{round}", root));
                }
                Console.Error.WriteLine($"round {round}: raw {raw[^1].Rate:0}/s ({raw[^1].Cpu.PerEvent(Burst)}), "
                    + string.Join(", ", builds.Select((x, i) => $"broker{x.Name} {runs[i][^1].Rate:0}/s ({runs[i][^1].Cpu.PerEvent(Burst)})")));
            }
            var rawRate = Median(raw.Select(r => r.Rate));
            var rawCpu = raw.MinBy(r => r.Cpu.TotalMicroseconds(Burst)).Cpu;
            for (var b = 0; b < builds.Count; b++)
            {
                var rate = Median(runs[b].Select(r => r.Rate));
                rows.Add(new($"Events runner → Postgres → reader, sustained{builds[b].Name}", $"{rate:N0} events/s",
                    $"raw INSERT {rawRate:N0} events/s", Report.Ratio(rate, rawRate), "≥ 20,000 events/s and ≥ 0.75×",
                    rate >= 20_000 && rate >= 0.75 * rawRate));
                // The least CPU of the rounds: what the work costs when the machine's other load interferes least.
                var cpu = runs[b].MinBy(r => r.Cpu.TotalMicroseconds(Burst)).Cpu;
                rows.Add(new($"CPU per event: runner and reader + broker + Postgres{builds[b].Name}", cpu.PerEvent(Burst),
                    $"raw INSERT: client + 0 + Postgres {rawCpu.PerEvent(Burst)}", Report.Ratio(cpu.TotalMicroseconds(Burst), rawCpu.TotalMicroseconds(Burst)),
                    "—", null));
            }

            // 2. Latency at a steady 500 events/s for 10 s, publish → visible to the NOTIFY-woken reader. Each window starts
            // with the bursts' writes on disk: the rounds above leave a few hundred MB of dirty pages, which the kernel
            // writes back about 30 s later, all at once, and every fsync (the runner's outbox, Postgres's commits) waits
            // behind it. Measured on this kind of machine: /proc/meminfo Dirty fell from 324 MB to 0.5 MB at the moment
            // one window's events stalled for 147 ms, in whichever build's window it fell (p99 45–333 ms instead of 16–22).
            for (var b = 0; b < builds.Count; b++)
            {
                await FlushToDiskAsync(db);
                var (p50, p99) = await PacedAsync(db, builds[b].Broker, $"paced-{b}", root);
                Console.Error.WriteLine($"latency at 500/s{builds[b].Name}: p50 {p50:0.0} ms p99 {p99:0.0} ms");
                rows.Add(new($"Publish → visible latency at 500 events/s{builds[b].Name}", $"p50 {p50:0.0} ms, p99 {p99:0.0} ms", "—", "—",
                    "p99 ≤ 25 ms", p99 <= 25));
            }

            // 3. How the sustained rate holds up as idle runners join (heartbeats, liveness, per-link memory on the same broker).
            if (options.IdleSteps.Count > 0) rows.AddRange(await CurveAsync(db, cluster.Port, builds[0].Broker, root, options.IdleSteps));
        }
        finally
        {
            foreach (var (_, broker) in builds) broker.Dispose();
        }
        return rows;
    }

    private static async Task<(double Rate, CpuSample Cpu)> SustainedAsync(string db, int port, BrokerProcess broker, string runnerId, string root, int total = Burst)
    {
        var project = await CreateProjectAsync(db, runnerId);
        await using var reader = await EventReader.StartAsync(db, project);
        await using var runner = await BenchRunner.StartAsync(broker.LinkUri, runnerId, Path.Combine(root, runnerId));
        var cpu = CpuSample.Take(broker, port);
        var clock = Stopwatch.StartNew();
        var publishing = new List<ValueTask>(total);
        for (var i = 0; i < total; i++) publishing.Add(runner.Events.PublishAsync(project, new BuildLog("line " + i)));
        foreach (var p in publishing) await p;
        await reader.WaitForAsync(total, TimeSpan.FromMinutes(3));
        return (total / clock.Elapsed.TotalSeconds, CpuSample.Take(broker, port) - cpu);
    }

    private static async Task<(double P50, double P99)> PacedAsync(string db, BrokerProcess broker, string runnerId, string root)
    {
        const int perSecond = 500, seconds = 10;
        var project = await CreateProjectAsync(db, runnerId);
        await using var reader = await EventReader.StartAsync(db, project);
        await using var runner = await BenchRunner.StartAsync(broker.LinkUri, runnerId, Path.Combine(root, runnerId));
        var clock = Stopwatch.StartNew();
        for (var sent = 0; sent < perSecond * seconds;)
        {
            var due = (int)(clock.Elapsed.TotalSeconds * perSecond);
            if (sent >= due) { await Task.Delay(2); continue; }
            for (; sent < due && sent < perSecond * seconds; sent++) _ = runner.Events.PublishAsync(project, new BuildLog("tick " + sent));
        }
        await reader.WaitForAsync(perSecond * seconds, TimeSpan.FromMinutes(1));
        return Report.Percentiles(reader.LatenciesMs);
    }

    private static async Task<List<Figure>> CurveAsync(string db, int port, BrokerProcess broker, string root, IReadOnlyList<int> steps)
    {
        var rows = new List<Figure>();
        var idle = new List<IdleRunner>();
        var points = new List<(int Step, double Rate, double Raw, CpuSample Cpu)>();
        try
        {
            foreach (var step in steps.Order())
            {
                using var gate = new SemaphoreSlim(50);
                var connecting = Enumerable.Range(idle.Count, step - idle.Count).Select(async i =>
                {
                    await gate.WaitAsync();
                    try { return await IdleRunner.ConnectAsync(broker.LinkUri, $"events-idle-{i:D5}"); }
                    finally { gate.Release(); }
                }).ToList();
                idle.AddRange(await Task.WhenAll(connecting));
                // Its own raw INSERT right before: the events table has grown by then, and Postgres's cost per row with it.
                var (rawRate, _) = await RawInsertRateAsync(db, port, Burst);
                var (rate, cpu) = await SustainedAsync(db, port, broker, $"curve-{step}", root);
                Console.Error.WriteLine($"sustained with {step} idle runners: {rate:0} events/s ({cpu.PerEvent(Burst)}; raw INSERT just before {rawRate:0}/s)");
                // The CPU split says which side pays for the idle links where the curve bends.
                rows.Add(new($"Events sustained with {step:N0} idle runners", $"{rate:N0} events/s (CPU per event: runners and reader + broker + Postgres {cpu.PerEvent(Burst)})",
                    $"raw INSERT {rawRate:N0} events/s", Report.Ratio(rate, rawRate), "—", null));
                points.Add((step, rate, rawRate, cpu));
            }
            if (points.Count > 1) rows.Add(Bend(points));
        }
        finally
        {
            await Task.WhenAll(idle.Select(r => r.DisposeAsync().AsTask()));
        }
        return rows;
    }

    /// <summary>
    /// Where the sustained rate falls most as idle runners join, and which process's CPU per event grew most across that
    /// step: the idle links' heartbeats are paid by the runners' side and the broker during the burst, a grown events
    /// table by Postgres (and then the raw INSERT falls alike).
    /// </summary>
    private static Figure Bend(List<(int Step, double Rate, double Raw, CpuSample Cpu)> points)
    {
        const string name = "Where events/s bends as idle runners join (the dominant cost there)";
        if (Report.Bend([.. points.Select(p => p.Rate)], lowerIsWorse: true) is not { } at)
        {
            return new(name, $"no bend: no step from {points[0].Step:N0} to {points[^1].Step:N0} idle runners makes the rate 1.2× worse", "—", "—", "—", null);
        }
        var (before, after) = (points[at - 1], points[at]);
        double Grew(Func<CpuSample, TimeSpan> part) => (part(after.Cpu) - part(before.Cpu)).TotalMicroseconds / Burst;
        return new(name,
            string.Create(CultureInfo.InvariantCulture, $"{before.Step:N0} → {after.Step:N0} idle runners: events/s ×{after.Rate / before.Rate:0.00}; ")
                + "CPU per event " + Report.Largest("µs", ("runners and reader", Grew(c => c.Bench)), ("broker", Grew(c => c.Broker)), ("Postgres", Grew(c => c.Postgres))),
            string.Create(CultureInfo.InvariantCulture, $"raw INSERT ×{after.Raw / before.Raw:0.00} across the same step"), "—", "—", null);
    }

    /// <summary>A project assigned to the runner: the broker stores a runner's events only for its own projects.</summary>
    internal static async Task<Guid> CreateProjectAsync(string db, string runnerId)
    {
        var id = Guid.NewGuid();
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        await using var insert = new NpgsqlCommand("""
            INSERT INTO projects ("Id", "Slug", "Name", "Prompt", "Status", "TemplateId", "Agent", "Todos", "DevServer", "PreviewId",
                                  "CostUsd", "Turns", "CreatedAt", "UpdatedAt", "LastEventId", "RunnerId")
            VALUES (@id, @slug, 'Bench', 'bench', 'pending', 'vite-react', 'none', '[]', '{}', @preview, 0, 0, now(), now(), 0, @runner)
            """, connection);
        insert.Parameters.AddWithValue("id", id);
        insert.Parameters.AddWithValue("slug", "bench-" + id.ToString("N")[..12]);
        insert.Parameters.AddWithValue("preview", id.ToString("N"));
        insert.Parameters.AddWithValue("runner", runnerId);
        await insert.ExecuteNonQueryAsync();
        return id;
    }

    /// <summary>The rows a burst stores, inserted straight from here 500 to a statement and transaction: the floor's stand-in.</summary>
    private static async Task<(double Rate, CpuSample Cpu)> RawInsertRateAsync(string db, int port, int total)
    {
        // The same rows the runner's burst stores: its project (so the foreign key is checked), a payload of its own
        // per row ("line N", parsed as jsonb one by one) and a timestamp of its own, 500 to a statement and transaction.
        var project = await CreateProjectAsync(db, "raw-" + Guid.NewGuid().ToString("N")[..8]);
        await using var connection = new NpgsqlConnection(db);
        await connection.OpenAsync();
        var runner = "raw-" + Guid.NewGuid().ToString("N")[..8];
        var payloads = Enumerable.Range(0, total).Select(i => JsonSerializer.Serialize<ProjectEvent>(new BuildLog("line " + i), LinkProtocol.JsonOptions)).ToArray();
        var cpu = CpuSample.Take(null, port);
        var clock = Stopwatch.StartNew();
        for (var first = 1; first <= total; first += 500)
        {
            var count = Math.Min(500, total - first + 1);
            var seqs = Enumerable.Range(first, count).Select(i => (long)i).ToArray();
            var now = DateTimeOffset.UtcNow;
            await using var tx = await connection.BeginTransactionAsync();
            await using var insert = new NpgsqlCommand("""
                INSERT INTO events ("RunnerId", "Seq", "ProjectId", "Type", "Payload", "Timestamp", "CreatedAt")
                SELECT @runner, x.seq, @project, 'build-log', x.payload::jsonb, x.ts, now()
                FROM unnest(@seqs, @payloads, @timestamps) AS x(seq, payload, ts)
                ON CONFLICT ("RunnerId", "Seq") DO NOTHING
                """, connection, tx);
            insert.Parameters.AddWithValue("runner", runner);
            insert.Parameters.AddWithValue("project", project);
            insert.Parameters.Add(new NpgsqlParameter("seqs", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = seqs });
            insert.Parameters.Add(new NpgsqlParameter("payloads", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = payloads[(first - 1)..(first - 1 + count)] });
            insert.Parameters.Add(new NpgsqlParameter("timestamps", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz)
            {
                Value = Enumerable.Range(0, count).Select(_ => now).ToArray(),
            });
            await insert.ExecuteNonQueryAsync();
            await tx.CommitAsync();
        }
        return (total / clock.Elapsed.TotalSeconds, CpuSample.Take(null, port) - cpu);
    }

    /// <summary>Postgres's CHECKPOINT, then the kernel's <c>sync</c>: whatever earlier scenarios wrote is on disk.</summary>
    private static async Task FlushToDiskAsync(string db)
    {
        await using (var connection = new NpgsqlConnection(db))
        {
            await connection.OpenAsync();
            await using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection);
            await checkpoint.ExecuteNonQueryAsync();
        }
        using var sync = Process.Start(new ProcessStartInfo("sync") { UseShellExecute = false })!;
        await sync.WaitForExitAsync();
    }

    private static double Median(IEnumerable<double> values) => values.Order().ElementAt(values.Count() / 2);
}

/// <summary>
/// CPU time spent so far by this process (runner and reader), the broker and every process of the Postgres cluster on
/// a port: on a shared, loaded machine the CPU an event costs is steadier than events per second.
/// </summary>
public readonly record struct CpuSample(TimeSpan Bench, TimeSpan Broker, TimeSpan Postgres)
{
    public static CpuSample Take(BrokerProcess? broker, int postgresPort) =>
        new(Process.GetCurrentProcess().TotalProcessorTime, broker?.CpuTime() ?? TimeSpan.Zero, PostgresCpu(postgresPort));

    public static CpuSample operator -(CpuSample a, CpuSample b) => new(a.Bench - b.Bench, a.Broker - b.Broker, a.Postgres - b.Postgres);

    public string PerEvent(int events) => string.Create(CultureInfo.InvariantCulture,
        $"{Us(Bench, events):0.0} + {Us(Broker, events):0.0} + {Us(Postgres, events):0.0} = {Us(Bench + Broker + Postgres, events):0.0} µs");

    public double TotalMicroseconds(int events) => Us(Bench + Broker + Postgres, events);

    private static double Us(TimeSpan t, int events) => t.TotalMicroseconds / events;

    /// <summary>The postmaster started with <c>-p port</c> and its children (backends, WAL writer, checkpointer).</summary>
    private static TimeSpan PostgresCpu(int port)
    {
        var stats = new Dictionary<int, (int Parent, long Ticks)>();
        int? postmaster = null;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // After "pid (comm) ": state ppid … utime is field 14 of stat, stime 15 (1-based), here 11 and 12.
                stats[pid] = (int.Parse(fields[1], CultureInfo.InvariantCulture),
                    long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture));
                if (postmaster is null && stat.Contains("(postgres)", StringComparison.Ordinal)
                    && File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0') is var args
                    && args.Zip(args.Skip(1)).Any(a => a.First == "-p" && a.Second == port.ToString(CultureInfo.InvariantCulture)))
                {
                    postmaster = pid;
                }
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        if (postmaster is not { } root) return TimeSpan.Zero;
        var ticks = stats.Where(kv => kv.Key == root || kv.Value.Parent == root).Sum(kv => kv.Value.Ticks);
        return TimeSpan.FromSeconds(ticks / 100.0); // USER_HZ
    }
}

