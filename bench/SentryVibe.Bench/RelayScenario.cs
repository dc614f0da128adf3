// The preview relay (issue 6): a client → the real broker process (YARP) → the preview socket the runner dials for that
// connection (docs/architecture.md, decision 10) → the runner's pump → a loopback "dev server". Baseline in the same run: the same requests straight to the dev server.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Bench;

public static class RelayScenario
{
    private const int DownloadBytes = 64 * 1024 * 1024;
    private const int SmallGets = 2000;

    public static async Task<List<Figure>> RunAsync(string[] args)
    {
        // `relay <runs>`: more download runs, e.g. to attach a profiler to the broker while they go on.
        // `relay [runs] --broker DLL`: another build of the broker (an A/B of a change, run alternately).
        var downloadRuns = args.Length > 0 && int.TryParse(args[0], CultureInfo.InvariantCulture, out var runs) ? runs : 5;
        var brokerAt = Array.IndexOf(args, "--broker") is var at and >= 0 && at + 1 < args.Length ? Path.GetFullPath(args[at + 1]) : null;
        var root = Path.Combine(Path.GetTempPath(), "sv-bench-relay-" + Guid.NewGuid().ToString("N")[..8]);
        var rows = new List<Figure>();

        var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
        await using var cluster = new PostgresCluster(binaries, Path.Combine(root, "pg"));
        await cluster.StartAsync();
        var db = await LinkScenario.CreateDatabaseAsync(cluster, "relay");

        await using var devServer = await StartDevServerAsync();
        var devPort = new Uri(devServer.Urls.First()).Port;
        Console.Error.WriteLine($"dev server on {devPort}");

        using var broker = BrokerProcess.Start(db, LinkScenario.Secret, brokerAt);
        await broker.WaitReadyAsync();

        var project = Guid.NewGuid();
        var previewId = Guid.NewGuid().ToString("N");
        const string runnerId = "bench-relay";
        await InsertRunningProjectAsync(db, project, previewId, runnerId, devPort);
        await using var runner = await BenchRunner.StartAsync(broker.LinkUri, runnerId, Path.Combine(root, "runner"),
            services => services.AddSingleton<IPreviewTargets>(new FixedPreviewTarget(project, devPort)));

        var direct = new Target($"http://127.0.0.1:{devPort}", null);
        var relay = new Target($"http://127.0.0.1:{broker.Port}", $"{previewId}.preview.localhost:{broker.Port}");
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = TimeSpan.FromMinutes(2),
        };

        // Warm-up: connections pooled on both paths, JIT and tiering done, the relay's target cached.
        var probe = await http.SendAsync(relay.Get("/small"));
        if (probe.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"The relay answered {(int)probe.StatusCode}: {await probe.Content.ReadAsStringAsync()}");
        }
        for (var i = 0; i < 500; i++)
        {
            await SmallGetAsync(http, direct);
            await SmallGetAsync(http, relay);
        }
        // The relay's floor: two plain TCP forwarders in a row (DelayProxy without a delay) make the relay's three loopback
        // hops (dev server → runner → broker → client) with nothing else: no HTTP, no WebSocket, no second process.
        await using var floorSecond = DelayProxy.Start(devPort, TimeSpan.Zero);
        await using var floorFirst = DelayProxy.Start(floorSecond.Port, TimeSpan.Zero);
        var floor = new Target($"http://127.0.0.1:{floorFirst.Port}", null);
        // The physical floor: the same two forwarders splicing in the kernel (no copy into user space at all), the fastest
        // three loopback hops this machine makes. Linux only; without it its lines are left out.
        using var spliceSecond = SpliceProxy.Start(devPort);
        using var spliceFirst = spliceSecond is null ? null : SpliceProxy.Start(spliceSecond.Port);
        var spliced = spliceFirst is null ? null : new Target($"http://127.0.0.1:{spliceFirst.Port}", null);
        // Downloads long enough for tiered compilation to finish on both processes' copy loops: with one warm-up
        // download, perf showed the JIT's tiering threads at a third of the CPU during the measured runs.
        for (var i = 0; i < 10; i++)
        {
            await DownloadAsync(http, direct);
            await DownloadAsync(http, relay);
            await DownloadAsync(http, floor);
            if (spliced is not null) await DownloadAsync(http, spliced);
        }

        // (a) 64 MiB downloads, alternating so both paths see the same machine noise; the median run of each.
        // CPU time of both processes (this one: client, runner, dev server; and the broker) per download: on a shared
        // 2-core machine the rate swings with other load, the CPU a download costs much less.
        var directRates = new List<double>();
        var relayRates = new List<double>();
        var directCpu = new List<double>();
        var relayCpu = new List<double>();
        var floorRates = new List<double>();
        var floorCpu = new List<double>();
        var splicedRates = new List<double>();
        var splicedCpu = new List<double>();
        for (var i = 0; i < downloadRuns; i++)
        {
            var cpu = CpuMilliseconds(broker);
            directRates.Add(await DownloadAsync(http, direct));
            var between = CpuMilliseconds(broker);
            relayRates.Add(await DownloadAsync(http, relay));
            var after = CpuMilliseconds(broker);
            floorRates.Add(await DownloadAsync(http, floor));
            directCpu.Add(between - cpu);
            relayCpu.Add(after - between);
            var afterFloor = CpuMilliseconds(broker);
            floorCpu.Add(afterFloor - after);
            if (spliced is null) continue;
            splicedRates.Add(await DownloadAsync(http, spliced));
            splicedCpu.Add(CpuMilliseconds(broker) - afterFloor);
        }
        var (directMbps, _) = Report.Percentiles(directRates);
        var (relayMbps, _) = Report.Percentiles(relayRates);
        Console.Error.WriteLine($"download: relay {relayMbps:0} MB/s, direct {directMbps:0} MB/s; CPU per download: " +
            $"relay {Report.Percentiles(relayCpu).P50:0} ms, direct {Report.Percentiles(directCpu).P50:0} ms");
        rows.Add(new($"64 MiB download through the relay (median of {downloadRuns})", $"{relayMbps:N0} MB/s", $"direct {directMbps:N0} MB/s",
            Report.Ratio(relayMbps, directMbps), "≥ 0.6× direct", relayMbps / directMbps >= 0.6));
        var (relayCpuP50, _) = Report.Percentiles(relayCpu);
        var (directCpuP50, _) = Report.Percentiles(directCpu);
        rows.Add(new("CPU per 64 MiB download (all processes)", $"{relayCpuP50:N0} ms", $"direct {directCpuP50:N0} ms",
            Report.Ratio(relayCpuP50, directCpuP50), "≤ 2× direct", relayCpuP50 <= 2 * directCpuP50));
        // What the relay's three hops cost before any of its own work: the rate and CPU of the floor against the relay's.
        var (floorMbps, _) = Report.Percentiles(floorRates);
        var (floorCpuP50, _) = Report.Percentiles(floorCpu);
        Console.Error.WriteLine($"floor (three plain TCP hops): {floorMbps:0} MB/s, {floorCpuP50:0} ms CPU per download");
        rows.Add(new("64 MiB through three plain TCP hops, the relay's floor (CPU)", $"{floorMbps:N0} MB/s ({floorCpuP50:N0} ms)",
            $"relay {relayMbps:N0} MB/s ({relayCpuP50:N0} ms)", $"relay {Report.Ratio(relayMbps, floorMbps)}, CPU {Report.Ratio(relayCpuP50, floorCpuP50)}",
            "—", null));
        if (spliced is not null)
        {
            // What no design with two forwarders can beat here: the bar the 0.6× and 2× targets are read against.
            var (splicedMbps, _) = Report.Percentiles(splicedRates);
            var (splicedCpuP50, _) = Report.Percentiles(splicedCpu);
            Console.Error.WriteLine($"physical floor (three hops spliced in the kernel): {splicedMbps:0} MB/s, {splicedCpuP50:0} ms CPU per download");
            rows.Add(new("64 MiB through three hops spliced in the kernel, the physical floor (CPU)", $"{splicedMbps:N0} MB/s ({splicedCpuP50:N0} ms)",
                $"direct {directMbps:N0} MB/s ({directCpuP50:N0} ms)", $"{Report.Ratio(splicedMbps, directMbps)}, CPU {Report.Ratio(splicedCpuP50, directCpuP50)}",
                "—", null));
            rows.Add(new("The relay against the physical floor (CPU)", $"relay {relayMbps:N0} MB/s ({relayCpuP50:N0} ms)",
                $"spliced {splicedMbps:N0} MB/s ({splicedCpuP50:N0} ms)", $"{Report.Ratio(relayMbps, splicedMbps)}, CPU {Report.Ratio(relayCpuP50, splicedCpuP50)}",
                "—", null));
        }

        // (a') How the relay's cost grows with concurrent downloads (issue 16.6): 1, 4 and 16 at once, alternated with
        // the same number straight from the dev server.
        var curve = new List<(int Concurrent, double Mbps, double CpuEach)>();
        foreach (var concurrent in new[] { 1, 4, 16 })
        {
            var cpu = CpuMilliseconds(broker);
            var directAll = await DownloadManyAsync(http, direct, concurrent);
            var between = CpuMilliseconds(broker);
            var relayAll = await DownloadManyAsync(http, relay, concurrent);
            var relayPer = (CpuMilliseconds(broker) - between) / concurrent;
            var directPer = (between - cpu) / concurrent;
            Console.Error.WriteLine($"{concurrent} concurrent: relay {relayAll:0} MB/s ({relayPer:0} ms CPU each), direct {directAll:0} MB/s ({directPer:0} ms CPU each)");
            rows.Add(new($"{concurrent} concurrent 64 MiB downloads, relay (CPU each)", $"{relayAll:N0} MB/s ({relayPer:N0} ms)",
                $"direct {directAll:N0} MB/s ({directPer:N0} ms)", Report.Ratio(relayAll, directAll), "—", null));
            curve.Add((concurrent, relayAll, relayPer));
        }
        rows.Add(Bend(curve));

        // (b) Small GETs, interleaved one by one, through the floor's three plain hops as well.
        var directLatency = new List<double>(SmallGets);
        var relayLatency = new List<double>(SmallGets);
        var floorLatency = new List<double>(SmallGets);
        for (var i = 0; i < SmallGets; i++)
        {
            directLatency.Add(await SmallGetAsync(http, direct));
            relayLatency.Add(await SmallGetAsync(http, relay));
            floorLatency.Add(await SmallGetAsync(http, floor));
        }
        var (d50, d99) = Report.Percentiles(directLatency);
        var (r50, r99) = Report.Percentiles(relayLatency);
        var (f50, f99) = Report.Percentiles(floorLatency);
        Console.Error.WriteLine($"small GET: relay p50 {r50:0.00} p99 {r99:0.00} ms; direct p50 {d50:0.00} p99 {d99:0.00} ms; floor p50 {f50:0.00} p99 {f99:0.00} ms");
        rows.Add(new($"Small GET through the relay ({SmallGets:N0})", $"p50 {r50:0.00} ms, p99 {r99:0.00} ms",
            $"direct p50 {d50:0.00} ms, p99 {d99:0.00} ms", $"p99 {Report.Ratio(r99, d99)}", "p99 ≤ 2× direct", r99 <= 2 * d99));
        rows.Add(new($"Small GET through three plain TCP hops, the relay's floor ({SmallGets:N0})", $"p50 {f50:0.00} ms, p99 {f99:0.00} ms",
            $"relay p50 {r50:0.00} ms, p99 {r99:0.00} ms", $"relay p99 {Report.Ratio(r99, f99)}", "—", null));
        rows.Add(new("Latency the relay adds at p50", $"+{r50 - d50:0.00} ms", $"direct p50 {d50:0.00} ms", "—", "≤ 1.5 ms", r50 - d50 <= 1.5));

        rows.AddRange(await FarRunnerAsync(http, db, devPort, brokerAt, broker, Path.Combine(root, "far")));

        try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return rows;
    }

    /// <summary>
    /// (c) A new preview connection for every request (a dev server that closes each connection after its answer, as Node
    /// does after 5 s idle), with the runner a round trip away from the broker: a laptop's runner linked to a hosted broker.
    /// With spare preview sockets (docs/runner-protocol.md) the request goes out on a socket dialled ahead; the baseline,
    /// a second broker with <c>Broker:PreviewSparesPerRunner=0</c> in the same run, asks the runner for a socket with a
    /// ticket first. The delay proxy holds each chunk, not the TCP handshake: a real network adds a round trip to every
    /// dial (and TLS one or two more), so the baseline here is the cheaper of the two.
    /// </summary>
    private static async Task<List<Figure>> FarRunnerAsync(HttpClient http, string db, int devPort, string? brokerAt, BrokerProcess broker, string home)
    {
        const int roundTripMs = 20;
        const int requests = 40;
        using var ticketsOnly = BrokerProcess.Start(db, LinkScenario.Secret, brokerAt,
            new Dictionary<string, string> { ["Broker__PreviewSparesPerRunner"] = "0" });
        await ticketsOnly.WaitReadyAsync();

        async Task<(Target Target, DelayProxy Far, BenchRunner Runner)> FarAsync(BrokerProcess to, string runnerId)
        {
            var project = Guid.NewGuid();
            var previewId = Guid.NewGuid().ToString("N");
            await InsertRunningProjectAsync(db, project, previewId, runnerId, devPort);
            var far = DelayProxy.Start(to.Port, TimeSpan.FromMilliseconds(roundTripMs));
            var runner = await BenchRunner.StartAsync(new Uri($"ws://127.0.0.1:{far.Port}{LinkProtocol.RunnerPath}"), runnerId,
                Path.Combine(home, runnerId), services => services.AddSingleton<IPreviewTargets>(new FixedPreviewTarget(project, devPort)));
            return (new Target($"http://127.0.0.1:{to.Port}", $"{previewId}.preview.localhost:{to.Port}"), far, runner);
        }
        var (spares, sparesFar, sparesRunner) = await FarAsync(broker, "bench-relay-far");
        await using (sparesFar)
        await using (sparesRunner)
        {
            var (tickets, ticketsFar, ticketsRunner) = await FarAsync(ticketsOnly, "bench-relay-far-tickets");
            await using (ticketsFar)
            await using (ticketsRunner)
            {
                return await NewConnectionsAsync(http, spares, tickets, roundTripMs, requests);
            }
        }
    }

    /// <summary>(c)'s requests, alternating between the broker with spares and the one without.</summary>
    private static async Task<List<Figure>> NewConnectionsAsync(HttpClient http, Target spares, Target tickets, int roundTripMs, int requests)
    {
        var spareLatency = new List<double>(requests);
        var ticketLatency = new List<double>(requests);
        for (var i = 0; i < 5; i++) // the first opens a ticket's socket and sets the runner dialling its spares
        {
            await Fetch.TimedGetAsync(http, spares.Get("/closing"));
            await Fetch.TimedGetAsync(http, tickets.Get("/closing"));
        }
        for (var i = 0; i < requests; i++)
        {
            spareLatency.Add(await Fetch.TimedGetAsync(http, spares.Get("/closing")));
            ticketLatency.Add(await Fetch.TimedGetAsync(http, tickets.Get("/closing")));
        }
        var (s50, s99) = Report.Percentiles(spareLatency);
        var (t50, t99) = Report.Percentiles(ticketLatency);
        Console.Error.WriteLine($"new connection, runner {roundTripMs} ms away: spares p50 {s50:0.0} p99 {s99:0.0} ms; tickets p50 {t50:0.0} p99 {t99:0.0} ms");
        return
        [
            new($"Small GET on a new preview connection each, runner {roundTripMs} ms away, with spare sockets ({requests})",
                $"p50 {s50:0.0} ms, p99 {s99:0.0} ms", $"tickets only (the same run): p50 {t50:0.0} ms, p99 {t99:0.0} ms",
                $"p50 {Report.Ratio(s50, t50)}", "—", null),
            new("The same, in round trips between runner and broker (p50)", string.Create(CultureInfo.InvariantCulture, $"{s50 / roundTripMs:0.0}"),
                string.Create(CultureInfo.InvariantCulture, $"tickets only {t50 / roundTripMs:0.0}"), "—", "—", null),
        ];
    }

    private static double CpuMilliseconds(BrokerProcess broker)
    {
        using var self = Process.GetCurrentProcess();
        return (self.TotalProcessorTime + broker.CpuTime()).TotalMilliseconds;
    }

    private sealed record Target(string Origin, string? Host)
    {
        public HttpRequestMessage Get(string path)
        {
            var request = new HttpRequestMessage(HttpMethod.Get, Origin + path);
            // .NET cannot resolve *.localhost (docs/testing: "Preview host names"): connect to loopback, send the preview Host.
            if (Host is not null) request.Headers.Host = Host;
            return request;
        }
    }

    private static Task<double> SmallGetAsync(HttpClient http, Target target) => Fetch.TimedGetAsync(http, target.Get("/small"));

    /// <summary>
    /// Where the relay's total rate stops growing with concurrent downloads, and what it is short of there: the cores its
    /// CPU per download keeps busy at that rate (CPU-bound when that is the machine's cores) and how that CPU grew.
    /// </summary>
    private static Figure Bend(List<(int Concurrent, double Mbps, double CpuEach)> curve)
    {
        const string name = "Where the relay's total rate bends with concurrent downloads (the dominant cost there)";
        // Cores busy: the CPU of all downloads over the time they took, i.e. CPU per byte times bytes per second.
        double Cores((int Concurrent, double Mbps, double CpuEach) p) => p.CpuEach / 1000 * p.Mbps * 1e6 / DownloadBytes;
        if (Report.Bend([.. curve.Select(p => p.Mbps)], lowerIsWorse: true) is not { } at)
        {
            var last = curve[^1];
            return new(name, string.Create(CultureInfo.InvariantCulture,
                $"no bend: no step up to {last.Concurrent} at once makes the total rate 1.2× worse; {Cores(last):0.0} of {Environment.ProcessorCount} cores busy there"), "—", "—", "—", null);
        }
        var (before, after) = (curve[at - 1], curve[at]);
        return new(name, string.Create(CultureInfo.InvariantCulture,
                $"{before.Concurrent} → {after.Concurrent} at once: total ×{after.Mbps / before.Mbps:0.00}; {Cores(before):0.0} → {Cores(after):0.0} of {Environment.ProcessorCount} cores busy"),
            string.Create(CultureInfo.InvariantCulture, $"CPU per download {before.CpuEach:0} → {after.CpuEach:0} ms"), "—", "—", null);
    }

    /// <summary><paramref name="count"/> whole downloads at once; MB/s of all together.</summary>
    private static async Task<double> DownloadManyAsync(HttpClient http, Target target, int count)
    {
        var start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, count).Select(_ => Task.Run(() => DownloadAsync(http, target))));
        return (double)count * DownloadBytes / Stopwatch.GetElapsedTime(start).TotalSeconds / 1e6;
    }

    private static Task<double> DownloadAsync(HttpClient http, Target target) => Fetch.DownloadAsync(http, target.Get("/big"), DownloadBytes);

    /// <summary>The "dev server": /small answers a few bytes (/closing the same, then closes the connection), /big streams 64 MiB (Content-Length set) from one buffer.</summary>
    private static async Task<WebApplication> StartDevServerAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var chunk = new byte[1024 * 1024];
        Random.Shared.NextBytes(chunk);
        app.MapGet("/small", () => Results.Text("<!doctype html><p>ok</p>", "text/html"));
        app.MapGet("/closing", (HttpContext context) =>
        {
            context.Response.Headers.Connection = "close"; // a new connection for the next request, as after Node's 5 s idle close
            return Results.Text("<!doctype html><p>ok</p>", "text/html");
        });
        app.MapGet("/big", async (HttpContext context) =>
        {
            context.Response.ContentType = "application/octet-stream";
            context.Response.ContentLength = DownloadBytes;
            for (var sent = 0; sent < DownloadBytes; sent += chunk.Length) await context.Response.Body.WriteAsync(chunk);
        });
        await app.StartAsync();
        return app;
    }

    /// <summary>The row the relay looks the preview id up in: a project on this runner whose dev server runs on the port.</summary>
    private static async Task InsertRunningProjectAsync(string db, Guid project, string previewId, string runnerId, int port)
    {
        await using var context = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(db).Options);
        context.Projects.Add(new Project
        {
            Id = project,
            Slug = "relay-bench-" + previewId[..8],
            Name = "relay bench",
            Prompt = "bench",
            TemplateId = "vite-react",
            Agent = "none",
            RunnerId = runnerId,
            Status = ProjectStatuses.Ready,
            PreviewId = previewId,
            DevServer = new DevServerState { Status = DevServerStatuses.Running, Port = port, Provider = "relay" },
            CreatedAt = DateTimeOffset.UtcNow,
            UpdatedAt = DateTimeOffset.UtcNow,
        });
        await context.SaveChangesAsync();
    }

    private sealed class FixedPreviewTarget(Guid project, int port) : IPreviewTargets
    {
        public int? GetDevServerPort(Guid projectId) => projectId == project ? port : null;
    }
}
