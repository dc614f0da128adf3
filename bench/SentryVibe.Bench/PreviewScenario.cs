// Warm time-to-preview (issue 9): the whole app started by the real AppHost (Aspire.Hosting.Testing, its own
// SENTRYVIBE_HOME, Postgres from the machine's binaries); template vite-react, agent none; from POST /api/projects to
// the first 200 through the preview URL. Baseline in the same run: `npm run dev` in a copy of the template whose
// node_modules are already installed, to the first 200 from vite itself — the floor — so the difference is what
// SentryVibe adds; and once `npm install` + `npm run dev` by hand, what a project costs without the install cache.
// A restart is broken into stages (stop, spawn, vite ready, port detected, first HTML through the relay, rendered in
// Chromium), one table line each; and per built-in template a cold-cache whole-page load in Chromium through the relay
// against the same load straight from the dev server (issue 16.5), and the relay against that real dev server: its
// page's HTML fetched on its own and a 64 MiB file from its public/ folder, each through the relay and straight.
// `--runs N` sets the measured runs (default 3); `--templates a,b` the templates of the page-load lines (default every
// built-in one).
extern alias AppHostAssembly;

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SentryVibe.LocalPostgres;

namespace SentryVibe.Bench;

public static class PreviewScenario
{
    private static readonly string[] BuiltInTemplates = ["vite-react", "react-node", "astro", "nextjs"];
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(5); // the first (uncounted) run may be a cold npm install

    private sealed record Contract(string WebUrl, string BrokerUrl, string ApiToken, string PreviewDomain);

    /// <summary>One restart, in ms: the stop, then each leg after POST dev-server/start (runner event timestamps, same clock).</summary>
    private sealed record RestartStages(double Stop, double Spawned, double ViteReady, double PortDetected, double FirstHtml);

    private static string? Option(string[] args, string name) =>
        args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

    public static async Task<List<Figure>> RunAsync(string[] args)
    {
        var home = Path.Combine(Path.GetTempPath(), "sv-bench-app-" + Guid.NewGuid().ToString("N")[..8]);
        var rows = new List<Figure>();
        var runs = int.TryParse(Option(args, "--runs"), CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 3;
        var templates = Option(args, "--templates")?.Split(',', StringSplitOptions.RemoveEmptyEntries) ?? BuiltInTemplates;
        try
        {
            var clock = Stopwatch.StartNew();
            await using var app = await StartAppAsync(home);
            var contract = await ReadContractAsync(home);
            Console.Error.WriteLine($"whole app up in {clock.Elapsed.TotalSeconds:0.0} s: web {contract.WebUrl}, previews *.{contract.PreviewDomain}");

            using var api = new HttpClient { BaseAddress = new Uri(contract.WebUrl), Timeout = TimeSpan.FromSeconds(30) };
            api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", contract.ApiToken);
            using var previews = LoopbackClient();

            // Not counted: warms the npm cache, the runner's template copy and every process's JIT.
            var warm = await TimeToPreviewAsync(api, previews, contract);
            Console.Error.WriteLine($"warm-up project: {warm.TotalSeconds:0.0} s");

            var times = new List<double>();
            string? last = null;
            for (var i = 0; i < runs; i++)
            {
                var t = await TimeToPreviewAsync(api, previews, contract, id => last = id);
                Console.Error.WriteLine($"time to preview #{i + 1}: {t.TotalSeconds:0.00} s");
                times.Add(t.TotalSeconds);
            }

            // Restart (issue 14): the same, stopped project started again, POST → first 200 through the relay.
            var stages = new List<RestartStages>();
            for (var i = 0; i < runs; i++)
            {
                var t = await RestartAsync(api, previews, contract, last!);
                Console.Error.WriteLine($"restart #{i + 1}: {t.FirstHtml / 1000:0.00} s");
                stages.Add(t);
            }
            var restarts = stages.Select(t => t.FirstHtml / 1000).ToList();

            // The floor for any tool: vite itself starting in a folder whose node_modules are already there.
            // The first by-hand run also installs, which is what a project costs without the install cache.
            var byHand = Path.Combine(home, "baseline");
            var withInstall = await NpmBaselineAsync(previews, byHand, install: true);
            Console.Error.WriteLine($"npm install + vite by hand: {withInstall.TotalSeconds:0.00} s");
            var baselines = new List<double>();
            for (var i = 0; i < runs; i++)
            {
                var t = await NpmBaselineAsync(previews, byHand, install: false);
                Console.Error.WriteLine($"vite alone, node_modules present #{i + 1}: {t.TotalSeconds:0.00} s");
                baselines.Add(t.TotalSeconds);
            }

            // The same in the browser (issue 14): the "Start dev server" click to the app rendered in the panel's frame.
            var (clicks, rendered) = await BrowserRestartsAsync(api, contract, last!, args, byHand, runs);

            // What a person feels once it runs: the whole page (vite's module graph) in a browser with an empty cache.
            var loads = await PageLoadsAsync(api, previews, contract, templates, last!, runs, args.Contains("--trace"));

            var (p50, _) = Report.Percentiles(times);
            var (b50, _) = Report.Percentiles(baselines);
            rows.Add(new($"Warm time to preview, vite-react, agent none (N={runs})",
                string.Create(CultureInfo.InvariantCulture, $"p50 {p50:0.00} s, max {times.Max():0.00} s"),
                string.Create(CultureInfo.InvariantCulture, $"vite alone, node_modules present: p50 {b50:0.00} s, max {baselines.Max():0.00} s"),
                $"p50 {Report.Ratio(p50, b50)}", "p50 ≤ 2.5 s and ≤ 1.7× (issue 16.5)", p50 <= 2.5 && p50 <= 1.7 * b50));
            var (r50, _) = Report.Percentiles(restarts);
            rows.Add(new($"Restart of a stopped vite-react project, start → first 200 through the relay (N={runs})",
                string.Create(CultureInfo.InvariantCulture, $"p50 {r50:0.00} s, max {restarts.Max():0.00} s"),
                string.Create(CultureInfo.InvariantCulture, $"vite alone, node_modules present: p50 {b50:0.00} s"),
                $"p50 {Report.Ratio(r50, b50)}", "≤ 3 s", restarts.Max() <= 3));
            if (clicks.Count > 0)
            {
                var (c50, _) = Report.Percentiles(clicks);
                var (f50, _) = Report.Percentiles(rendered);
                rows.Add(new($"Restart in Chromium, \"Start dev server\" click → app rendered in the panel (N={clicks.Count})",
                    string.Create(CultureInfo.InvariantCulture, $"p50 {c50:0.00} s, max {clicks.Max():0.00} s"),
                    string.Create(CultureInfo.InvariantCulture, $"vite alone to the app rendered in Chromium: p50 {f50:0.00} s"),
                    $"p50 {Report.Ratio(c50, f50)}", "≤ 3 s", clicks.Max() <= 3));
            }
            // Where a restart's time goes, stage by stage (p50 over the runs; each leg measured from POST dev-server/start).
            string Ms(IEnumerable<double> values)
            {
                var list = values.Where(double.IsFinite).ToList();
                return list.Count == 0 ? "—" : string.Create(CultureInfo.InvariantCulture, $"p50 {Report.Percentiles(list).P50:0} ms, max {list.Max():0} ms");
            }
            rows.Add(new($"Restart stage: stop (POST stop → status stopped) (N={runs})", Ms(stages.Select(t => t.Stop)), "—", "—", "—", null));
            rows.Add(new("Restart stage: start → dev server spawned (dev-server-starting)", Ms(stages.Select(t => t.Spawned)), "—", "—", "—", null));
            rows.Add(new("Restart stage: start → vite ready (its \"ready in\" line)", Ms(stages.Select(t => t.ViteReady)),
                string.Create(CultureInfo.InvariantCulture, $"vite alone to first 200: p50 {b50 * 1000:0} ms"), "—", "—", null));
            rows.Add(new("Restart stage: start → port detected (port-detected)", Ms(stages.Select(t => t.PortDetected)), "—", "—", "—", null));
            rows.Add(new("Restart stage: start → first HTML through the relay", Ms(stages.Select(t => t.FirstHtml)), "—", "—", "—", null));
            if (clicks.Count > 0)
            {
                rows.Add(new("Restart stage: click → rendered in Chromium", Ms(clicks.Select(c => c * 1000)), "—", "—", "≤ 3 s", clicks.Max() <= 3));
            }
            foreach (var (template, relayed, direct, getsRelayed, getsDirect, large, afterIdle) in loads)
            {
                var (l50, _) = Report.Percentiles(relayed);
                var (d50, _) = Report.Percentiles(direct);
                rows.Add(new($"Whole page load in Chromium, cold browser cache, {template}, through the relay (N={relayed.Count})",
                    string.Create(CultureInfo.InvariantCulture, $"p50 {l50:0} ms, max {relayed.Max():0} ms"),
                    string.Create(CultureInfo.InvariantCulture, $"straight from the dev server: p50 {d50:0} ms"),
                    Report.Ratio(l50, d50), "≤ 1.25×", l50 <= 1.25 * d50));
                var (g50, g99) = Report.Percentiles(getsRelayed);
                var (h50, h99) = Report.Percentiles(getsDirect);
                rows.Add(new($"GET of the page's HTML from {template}'s real dev server, through the relay (N={getsRelayed.Count})",
                    string.Create(CultureInfo.InvariantCulture, $"p50 {g50:0.00} ms, p99 {g99:0.00} ms"),
                    string.Create(CultureInfo.InvariantCulture, $"straight: p50 {h50:0.00} ms, p99 {h99:0.00} ms"),
                    $"p99 {Report.Ratio(g99, h99)}", "p99 ≤ 2× straight (issue 16.4)", g99 <= 2 * h99));
                if (afterIdle is ({ } idleRelayed, { } idleDirect))
                {
                    var (i50, _) = Report.Percentiles(idleRelayed);
                    var (j50, _) = Report.Percentiles(idleDirect);
                    rows.Add(new($"The same GET 6 s after the last, {template} (its idle connections closed), through the relay (N={idleRelayed.Count})",
                        string.Create(CultureInfo.InvariantCulture, $"p50 {i50:0.00} ms, max {idleRelayed.Max():0.00} ms"),
                        string.Create(CultureInfo.InvariantCulture, $"straight: p50 {j50:0.00} ms, max {idleDirect.Max():0.00} ms"),
                        Report.Ratio(i50, j50), "—", null));
                }
                if (large is { } mbps)
                {
                    rows.Add(new($"64 MiB from {template}'s real dev server (its public/ folder), through the relay (median of 3)",
                        $"{mbps.Relayed:N0} MB/s", $"straight {mbps.Direct:N0} MB/s", Report.Ratio(mbps.Relayed, mbps.Direct),
                        "≥ 0.6× straight (issue 16.4)", mbps.Relayed >= 0.6 * mbps.Direct));
                }
            }
            rows.Add(new("Overhead SentryVibe adds at p50 (scaffold, link, install cache copy, relay)",
                string.Create(CultureInfo.InvariantCulture, $"{p50 - b50:+0.00;-0.00} s"),
                string.Create(CultureInfo.InvariantCulture, $"{b50:0.00} s"), "—", "—", null));
            rows.Add(new("The same project by hand without a cache (npm install + vite)",
                string.Create(CultureInfo.InvariantCulture, $"{withInstall.TotalSeconds:0.00} s"),
                string.Create(CultureInfo.InvariantCulture, $"SentryVibe p50 {p50:0.00} s"),
                Report.Ratio(withInstall.TotalSeconds, p50), "—", null));
        }
        finally
        {
            try { Directory.Delete(home, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return rows;
    }

    /// <summary>POST a project, then poll its preview URL (the relay answers 503 pages until the dev server runs).</summary>
    private static async Task<TimeSpan> TimeToPreviewAsync(HttpClient api, HttpClient previews, Contract contract, Action<string>? onCreated = null)
    {
        var posted = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var created = await api.PostAsJsonAsync("/api/projects", new { prompt = "Create a React todo app", templateId = "vite-react", agent = "none" });
        if (created.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"POST /api/projects: {(int)created.StatusCode}");
        var project = await created.Content.ReadFromJsonAsync<JsonElement>();
        var id = project.GetProperty("id").GetString();
        var url = $"http://{project.GetProperty("previewId").GetString()}.{contract.PreviewDomain}/";
        onCreated?.Invoke(id!);
        while (true)
        {
            if (clock.Elapsed > ReadyTimeout) throw new TimeoutException($"{url} did not answer 200 within {ReadyTimeout.TotalMinutes} min.");
            try
            {
                using var response = await previews.GetAsync(url);
                if (response.StatusCode == HttpStatusCode.OK) break;
            }
            catch (HttpRequestException) { }
            await Task.Delay(50);
        }
        var elapsed = clock.Elapsed;
        // Where the time went, from the runner's event timestamps (same machine, same clock): each event type's first.
        var legs = (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?limit=1000")).EnumerateArray()
            .Select(e => (Type: e.GetProperty("type").GetString(), At: (e.GetProperty("timestamp").GetDateTimeOffset() - posted).TotalMilliseconds))
            .DistinctBy(l => l.Type);
        Console.Error.WriteLine("  stages (ms after POST): " + string.Join(", ", legs.Select(l => string.Create(CultureInfo.InvariantCulture, $"{l.Type} {l.At:0}")))
            + string.Create(CultureInfo.InvariantCulture, $", first 200 through the relay {elapsed.TotalMilliseconds:0}"));
        // Stop it so the next run does not share the machine with an idle vite.
        await api.PostAsync($"/api/projects/{id}/dev-server/stop", null);
        return elapsed;
    }

    /// <summary>
    /// Stops the project (waits until the row says stopped), then times POST dev-server/start → first 200 through the
    /// relay, and prints each leg from the runner's event timestamps (same machine, same clock).
    /// </summary>
    private static async Task<RestartStages> RestartAsync(HttpClient api, HttpClient previews, Contract contract, string id)
    {
        var stopClock = Stopwatch.StartNew();
        await api.PostAsync($"/api/projects/{id}/dev-server/stop", null);
        var waited = Stopwatch.StartNew();
        JsonElement project;
        while (true)
        {
            project = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
            var status = project.GetProperty("devServer").GetProperty("status").GetString();
            if (status is not ("running" or "starting")) break;
            if (waited.Elapsed > ReadyTimeout) throw new TimeoutException($"project {id} did not stop.");
            await Task.Delay(10);
        }
        var stopped = stopClock.Elapsed;
        var events = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?limit=1000");
        var after = events.EnumerateArray().Select(e => e.GetProperty("id").GetInt64()).DefaultIfEmpty(0).Max();
        var url = $"http://{project.GetProperty("previewId").GetString()}.{contract.PreviewDomain}/";

        var posted = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var started = await api.PostAsync($"/api/projects/{id}/dev-server/start", null);
        if (!started.IsSuccessStatusCode) throw new InvalidOperationException($"POST dev-server/start: {(int)started.StatusCode}");
        var accepted = clock.Elapsed;
        while (true)
        {
            if (clock.Elapsed > ReadyTimeout) throw new TimeoutException($"{url} did not answer 200 after a restart.");
            try
            {
                using var response = await previews.GetAsync(url);
                if (response.StatusCode == HttpStatusCode.OK) break;
            }
            catch (HttpRequestException) { }
            await Task.Delay(10);
        }
        var elapsed = clock.Elapsed;

        var legs = (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?after={after}&limit=1000")).EnumerateArray()
            .Select(e => (Type: e.GetProperty("type").GetString(), At: e.GetProperty("timestamp").GetDateTimeOffset(), Data: e.GetProperty("data"))).ToList();
        double At(Func<(string? Type, DateTimeOffset At, JsonElement Data), bool> match) =>
            legs.Where(match).Select(l => (l.At - posted).TotalMilliseconds).DefaultIfEmpty(double.NaN).First();
        var stages = new RestartStages(
            stopped.TotalMilliseconds,
            At(l => l.Type == "dev-server-starting"),
            At(l => l.Type == "dev-server-log" && l.Data.TryGetProperty("line", out var line) && line.GetString()!.Contains("ready in", StringComparison.Ordinal)),
            At(l => l.Type == "port-detected"),
            elapsed.TotalMilliseconds);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  restart stages (ms): stop {stages.Stop:0}; after POST start: accepted {accepted.TotalMilliseconds:0}, spawned {stages.Spawned:0}, " +
            $"vite ready {stages.ViteReady:0}, port-detected {stages.PortDetected:0}, first 200 through the relay {stages.FirstHtml:0}"));
        return stages;
    }

    /// <summary>
    /// Per template: a project of it running, then alternately the whole page through the relay and straight from its dev
    /// server, each in a fresh browser context (an empty cache) until the load event; a first pair warms both and is
    /// not counted (Next.js compiles the page on its first request).
    /// </summary>
    private static async Task<List<TemplateLoads>> PageLoadsAsync(
        HttpClient api, HttpClient previews, Contract contract, string[] templates, string viteReactProject, int runs, bool trace)
    {
        var results = new List<TemplateLoads>();
        const string chromium = "/usr/bin/chromium";
        if (!File.Exists(chromium) || templates.Length == 0)
        {
            Console.Error.WriteLine($"no {chromium} (or no templates): the page-load lines are skipped");
            return results;
        }
        using var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        });
        foreach (var template in templates)
        {
            try
            {
                string id;
                long after = 0; // the port-detected of this start, not of an earlier one
                if (template == "vite-react")
                {
                    id = viteReactProject;
                    after = (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?limit=1000")).EnumerateArray()
                        .Select(e => e.GetProperty("id").GetInt64()).DefaultIfEmpty(0).Max();
                    await api.PostAsync($"/api/projects/{id}/dev-server/start", null);
                }
                else
                {
                    var created = await api.PostAsJsonAsync("/api/projects", new { prompt = $"A {template} page", templateId = template, agent = "none" });
                    if (created.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"POST /api/projects ({template}): {(int)created.StatusCode}");
                    id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
                }
                var clock = Stopwatch.StartNew();
                JsonElement? detected = null;
                while (detected is null)
                {
                    if (clock.Elapsed > ReadyTimeout) throw new TimeoutException($"{template}: no port-detected within {ReadyTimeout.TotalMinutes} min.");
                    var events = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?after={after}&limit=1000");
                    detected = events.EnumerateArray().Where(e => e.GetProperty("type").GetString() == "port-detected")
                        .Select(e => (JsonElement?)e.GetProperty("data")).LastOrDefault();
                    if (detected is null) await Task.Delay(200);
                }
                var project = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
                var relayUrl = $"http://{project.GetProperty("previewId").GetString()}.{contract.PreviewDomain}/";
                var directUrl = $"http://localhost:{detected.Value.GetProperty("port").GetInt32()}/";
                var relayed = new List<double>();
                var direct = new List<double>();
                for (var i = -1; i < runs; i++)
                {
                    foreach (var (url, into) in new[] { (relayUrl, relayed), (directUrl, direct) })
                    {
                        await using var context = await browser.NewContextAsync();
                        var page = await context.NewPageAsync();
                        var timings = new List<(string Url, Microsoft.Playwright.RequestTimingResult Timing)>();
                        if (trace) page.RequestFinished += (_, r) => timings.Add((r.Url, r.Timing));
                        var load = Stopwatch.StartNew();
                        var response = await page.GotoAsync(url, new() { WaitUntil = Microsoft.Playwright.WaitUntilState.Load, Timeout = 120_000 });
                        var ms = load.Elapsed.TotalMilliseconds;
                        if (trace) PrintTimings(template, url == relayUrl ? "relay" : "direct", ms, timings);
                        if (response is null || !response.Ok) throw new InvalidOperationException($"{template}: {url} answered {response?.Status}");
                        if (i >= 0) into.Add(ms);
                    }
                }
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"page load {template}: relay {string.Join(", ", relayed.Select(v => v.ToString("0", CultureInfo.InvariantCulture)))} ms; " +
                    $"direct {string.Join(", ", direct.Select(v => v.ToString("0", CultureInfo.InvariantCulture)))} ms"));
                // The relay against this real dev server, not the bench's fixed one (issue 16): its page's HTML fetched
                // alternately through the relay and straight, and a 64 MiB file from its public/ folder the same way.
                var (getsRelayed, getsDirect) = await SmallGetsAsync(previews, relayUrl, directUrl);
                (List<double>, List<double>)? afterIdle = template == "vite-react" ? await AfterIdleAsync(previews, relayUrl, directUrl) : null;
                var large = await LargeFileAsync(previews, template, project.GetProperty("path").GetString(), relayUrl, directUrl);
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{template} real dev server: GET / relay p99 {Report.Percentiles(getsRelayed).P99:0.00} ms, direct p99 {Report.Percentiles(getsDirect).P99:0.00} ms; " +
                    $"64 MiB {(large is { } l ? $"relay {l.Relayed:0} MB/s, direct {l.Direct:0} MB/s" : "not measured")}"));
                results.Add(new(template, relayed, direct, getsRelayed, getsDirect, large, afterIdle));
                await api.PostAsync($"/api/projects/{id}/dev-server/stop", null);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Console.Error.WriteLine($"page load {template}: skipped, {ex.Message}");
            }
        }
        return results;
    }

    /// <summary>
    /// One template's page loads, its page's HTML fetched on its own (and, for vite-react, after a pause), and a 64 MiB
    /// file from its dev server (MB/s).
    /// </summary>
    private sealed record TemplateLoads(string Template, List<double> Relayed, List<double> Direct, List<double> GetsRelayed, List<double> GetsDirect,
        (double Relayed, double Direct)? LargeMbps, (List<double> Relayed, List<double> Direct)? AfterIdle);

    /// <summary>
    /// The page's HTML 6 s after the last request, five times each way: by then a Node dev server has closed its idle
    /// keep-alive connections (Node's <c>keepAliveTimeout</c>, 5 s), so straight it costs a new loopback connection,
    /// and through the relay a new preview socket (a ticket over the link, the runner's dial back), which a person pays
    /// at each click after a pause.
    /// </summary>
    private static Task<(List<double> Relayed, List<double> Direct)> AfterIdleAsync(HttpClient previews, string relayUrl, string directUrl) =>
        Fetch.AlternatelyAsync(0, 5, () => Fetch.TimedGetAsync(previews, new(HttpMethod.Get, relayUrl)),
            () => Fetch.TimedGetAsync(previews, new(HttpMethod.Get, directUrl)), pause: TimeSpan.FromSeconds(6));

    /// <summary>The page's HTML 300 times each way, alternately, after 20 of each not counted.</summary>
    private static Task<(List<double> Relayed, List<double> Direct)> SmallGetsAsync(HttpClient previews, string relayUrl, string directUrl) =>
        Fetch.AlternatelyAsync(20, 300, () => Fetch.TimedGetAsync(previews, new(HttpMethod.Get, relayUrl)),
            () => Fetch.TimedGetAsync(previews, new(HttpMethod.Get, directUrl)));

    /// <summary>
    /// A 64 MiB file put in the project's <c>public/</c> folder (served as is by vite, astro and next), downloaded three
    /// times each way, alternately, after one of each not counted: the median MB/s of each. Null when the runner's
    /// folder of the project is not on this machine's disk.
    /// </summary>
    private static async Task<(double Relayed, double Direct)?> LargeFileAsync(HttpClient previews, string template, string? projectPath,
        string relayUrl, string directUrl)
    {
        const int size = 64 * 1024 * 1024;
        if (projectPath is null || !Directory.Exists(projectPath)) return null;
        var name = "sv-bench-" + Guid.NewGuid().ToString("N")[..8] + ".bin";
        var file = Path.Combine(projectPath, "public", name);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        var bytes = new byte[size];
        new Random(16).NextBytes(bytes);
        await File.WriteAllBytesAsync(file, bytes);
        try
        {
            var (relayed, direct) = await Fetch.AlternatelyAsync(1, 3, () => Fetch.DownloadAsync(previews, new(HttpMethod.Get, relayUrl + name), size),
                () => Fetch.DownloadAsync(previews, new(HttpMethod.Get, directUrl + name), size));
            return (Report.Percentiles(relayed).P50, Report.Percentiles(direct).P50);
        }
        catch (Exception e) when (e is InvalidOperationException or HttpRequestException or IOException)
        {
            Console.Error.WriteLine($"64 MiB from {template}: skipped, {e.Message}");
            return null;
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>With --trace: how a page load spent its time, request by request (what a slower relayed load waits on).</summary>
    private static void PrintTimings(string template, string how, double ms, List<(string Url, Microsoft.Playwright.RequestTimingResult Timing)> timings)
    {
        var connects = timings.Where(t => t.Timing.ConnectStart >= 0).Select(t => t.Timing.ConnectEnd - t.Timing.ConnectStart).ToList();
        var waits = timings.Where(t => t.Timing.ResponseStart >= 0 && t.Timing.RequestStart >= 0)
            .Select(t => t.Timing.ResponseStart - t.Timing.RequestStart).Order().ToList();
        var first = timings.Count == 0 ? 0 : timings.Min(t => t.Timing.StartTime);
        var slowest = timings.OrderByDescending(t => t.Timing.StartTime - first + t.Timing.ResponseEnd).Take(3)
            .Select(t => string.Create(CultureInfo.InvariantCulture, $"{new Uri(t.Url).AbsolutePath} ends {t.Timing.StartTime - first + t.Timing.ResponseEnd:0} ms"));
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {template} {how}: load {ms:0} ms, {timings.Count} requests, {connects.Count} connections (connect sum {connects.Sum():0.0} ms), " +
            $"wait for first byte p50 {(waits.Count == 0 ? 0 : waits[waits.Count / 2]):0.0} max {(waits.Count == 0 ? 0 : waits[^1]):0.0} ms; last: {string.Join("; ", slowest)}"));
    }

    /// <summary>Stops the project by the API, then in Chromium clicks "Start dev server" and waits for the app's text in the frame.</summary>
    private static async Task<(List<double> Clicks, List<double> ViteAlone)> BrowserRestartsAsync(HttpClient api, Contract contract, string id, string[] args, string byHand, int runs)
    {
        const string chromium = "/usr/bin/chromium";
        var times = new List<double>();
        if (!File.Exists(chromium))
        {
            Console.Error.WriteLine($"no {chromium}: the browser restart line is skipped");
            return (times, []);
        }
        using var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        });
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 900 } });
        context.SetDefaultTimeout(60_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync($"{contract.WebUrl}/login?t={Uri.EscapeDataString(contract.ApiToken)}");
        await page.Locator("#prompt").WaitForAsync();
        await page.GotoAsync($"{contract.WebUrl}/projects/{id}");
        // Which requests the frame made and when (ms after the click), to see where the frame's own time goes.
        var since = Stopwatch.StartNew();
        var trace = args.Contains("--trace");
        if (trace)
        {
            page.RequestFinished += (_, r) => Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {since.ElapsedMilliseconds,6} ms done {r.ResourceType} {r.Method} {r.Url} ({Who(r)}, response at +{r.Timing.ResponseEnd:0} ms)"));
            page.Response += (_, r) => { if (r.Status >= 400) Console.Error.WriteLine($"    {since.ElapsedMilliseconds,6} ms {r.Status} {r.Url}"); };
            page.RequestFailed += (_, r) => Console.Error.WriteLine($"    {since.ElapsedMilliseconds,6} ms failed {r.ResourceType} {r.Url} ({Who(r)}): {r.Failure}");
            page.Console += (_, m) => Console.Error.WriteLine($"    {since.ElapsedMilliseconds,6} ms console {m.Type}: {m.Text}");
            page.FrameNavigated += (_, f) => Console.Error.WriteLine($"    {since.ElapsedMilliseconds,6} ms navigated {(f == page.MainFrame ? "page" : "frame")} {f.Url}");
            page.FrameDetached += (_, f) => Console.Error.WriteLine($"    {since.ElapsedMilliseconds,6} ms detached frame {f.Url}");
            string Who(Microsoft.Playwright.IRequest r)
            {
                try { return r.Frame == page.MainFrame ? "page" : "frame"; }
                catch (Microsoft.Playwright.PlaywrightException) { return "worker"; }
            }
        }
        for (var i = 0; i < runs; i++)
        {
            await api.PostAsync($"/api/projects/{id}/dev-server/stop", null);
            var start = page.GetByRole(Microsoft.Playwright.AriaRole.Button, new() { Name = "Start dev server" });
            await start.WaitForAsync();
            var before = (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?limit=1000")).EnumerateArray()
                .Select(e => e.GetProperty("id").GetInt64()).DefaultIfEmpty(0).Max();
            var clickedAt = DateTimeOffset.UtcNow;
            var clock = Stopwatch.StartNew();
            since.Restart();
            await start.ClickAsync();
            var clicked = clock.Elapsed;
            TimeSpan framed, rendered;
            try
            {
                await page.Locator("iframe.preview-frame").WaitForAsync();
                framed = clock.Elapsed;
                await page.FrameLocator("iframe.preview-frame").GetByText("Your app is").WaitForAsync();
                rendered = clock.Elapsed;
            }
            catch (TimeoutException)
            {
                // What the panel showed and what the project said, so a restart that never renders can be told apart.
                Console.Error.WriteLine($"browser restart #{i + 1} timed out; the panel: "
                    + await page.Locator("section.preview").InnerTextAsync(new() { Timeout = 5_000 }));
                Console.Error.WriteLine("the project: " + await api.GetStringAsync($"/api/projects/{id}"));
                foreach (var e in (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?after={before}&limit=1000")).EnumerateArray())
                {
                    Console.Error.WriteLine("  event " + e.ToString());
                }
                throw;
            }
            var detected = (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?after={before}&limit=1000")).EnumerateArray()
                .Where(e => e.GetProperty("type").GetString() == "port-detected")
                .Select(e => (e.GetProperty("timestamp").GetDateTimeOffset() - clickedAt).TotalMilliseconds).DefaultIfEmpty(double.NaN).First();
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"browser restart #{i + 1}: click {clicked.TotalMilliseconds:0} ms, port-detected {detected:0} ms, frame shown {framed.TotalMilliseconds:0} ms, app rendered {rendered.TotalMilliseconds:0} ms"));
            times.Add(rendered.TotalSeconds);
        }

        // The floor in the same browser: `npm run dev` by hand, to the app rendered straight from vite.
        // The first run is not counted: vite optimizes the by-hand copy's dependencies then (the project's were long done).
        var floor = new List<double>();
        for (var i = -1; i < runs; i++)
        {
            await page.GotoAsync("about:blank");
            var port = PostgresCluster.FreePort();
            var clock = Stopwatch.StartNew();
            using var dev = Start(byHand, $"run dev -- --port {port} --strictPort --host 127.0.0.1");
            try
            {
                while (true)
                {
                    if (clock.Elapsed > ReadyTimeout) throw new TimeoutException("vite did not answer.");
                    try
                    {
                        await page.GotoAsync($"http://127.0.0.1:{port}/");
                        break;
                    }
                    catch (Microsoft.Playwright.PlaywrightException) { await Task.Delay(50); }
                }
                await page.GetByText("Your app is").WaitForAsync();
                Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"vite alone rendered in Chromium #{i + 1}{(i < 0 ? " (warm-up, not counted)" : "")}: {clock.Elapsed.TotalMilliseconds:0} ms"));
                if (i >= 0) floor.Add(clock.Elapsed.TotalSeconds);
            }
            finally
            {
                dev.Kill(entireProcessTree: true);
                await dev.WaitForExitAsync();
            }
        }
        return (times, floor);
    }

    /// <summary>What a developer would do by hand in a copy of the same template: (npm install,) npm run dev, first 200.</summary>
    private static async Task<TimeSpan> NpmBaselineAsync(HttpClient http, string folder, bool install)
    {
        if (!Directory.Exists(folder))
        {
            CopyDirectory(Path.Combine(RepoRoot(), "Runner", "Templates", "vite-react"), folder);
        }
        var port = PostgresCluster.FreePort();

        var clock = Stopwatch.StartNew();
        if (install)
        {
            using var npm = Start(folder, "install --no-audit --no-fund");
            await npm.WaitForExitAsync();
            if (npm.ExitCode != 0) throw new InvalidOperationException($"npm install exited with {npm.ExitCode}");
        }
        using var dev = Start(folder, $"run dev -- --port {port} --strictPort --host 127.0.0.1");
        try
        {
            while (true)
            {
                if (clock.Elapsed > ReadyTimeout) throw new TimeoutException("vite did not answer.");
                try
                {
                    using var response = await http.GetAsync($"http://127.0.0.1:{port}/");
                    if (response.StatusCode == HttpStatusCode.OK) return clock.Elapsed;
                }
                catch (HttpRequestException) { }
                await Task.Delay(50);
            }
        }
        finally
        {
            dev.Kill(entireProcessTree: true);
            await dev.WaitForExitAsync();
        }
    }

    private static Process Start(string folder, string arguments)
    {
        var psi = new ProcessStartInfo("npm", arguments) { WorkingDirectory = folder, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }

    private static string RepoRoot()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "SentryVibe.sln"))) root = Path.GetDirectoryName(root.TrimEnd('/'))!;
        return root;
    }

    /// <summary>The AppHost the way the whole-app tests start it: own home, random ports, local Postgres.</summary>
    private static async Task<DistributedApplication> StartAppAsync(string home)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<AppHostAssembly::Projects.SentryVibe_AppHost>(
        [
            $"--SENTRYVIBE_HOME={home}",
            "--SentryVibe:Postgres=local",
            "--SentryVibe:WebPort=0",
            "--SentryVibe:BrokerPort=0",
            $"--SentryVibe:WorkspaceRoot={Path.Combine(home, "workspace")}",
        ], timeout.Token);
        // The services' own output would bury the table; their warnings and the host's still show.
        builder.Services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning).AddFilter("SentryVibe.AppHost.Resources", LogLevel.None)
            .AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks", LogLevel.None)); // "not healthy yet" while starting
        var app = await builder.BuildAsync(timeout.Token);
        try
        {
            await app.StartAsync(timeout.Token);
            var notifications = app.Services.GetRequiredService<ResourceNotificationService>();
            foreach (var service in new[] { "web", "broker", "runner" }) await notifications.WaitForResourceHealthyAsync(service, timeout.Token);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    private static async Task<Contract> ReadContractAsync(string home)
    {
        var path = Path.Combine(home, "apphost.json");
        for (var i = 0; i < 300; i++)
        {
            if (File.Exists(path))
            {
                try
                {
                    var contract = JsonSerializer.Deserialize<Contract>(await File.ReadAllTextAsync(path), new JsonSerializerOptions(JsonSerializerDefaults.Web));
                    if (contract is not null) return contract;
                }
                catch (JsonException) { } // being written
                catch (IOException) { }
            }
            await Task.Delay(100);
        }
        throw new TimeoutException("apphost.json was not written.");
    }

    /// <summary>Reaches *.localhost preview hosts by connecting to loopback and keeping the Host (docs/testing).</summary>
    private static HttpClient LoopbackClient() => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        ConnectCallback = async (context, ct) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };
}
