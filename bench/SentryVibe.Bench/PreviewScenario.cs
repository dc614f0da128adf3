// Warm time-to-preview (issue 9): the whole app started by the real AppHost (Aspire.Hosting.Testing, its own
// SENTRYVIBE_HOME, Postgres from the machine's binaries); template vite-react, agent none; from POST /api/projects to
// the first 200 through the preview URL. Baseline in the same run: `npm run dev` in a copy of the template whose
// node_modules are already installed, to the first 200 from vite itself — the floor — so the difference is what
// SentryVibe adds; and once `npm install` + `npm run dev` by hand, what a project costs without the install cache.
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
    private const int Measured = 3;
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(5); // the first (uncounted) run may be a cold npm install

    private sealed record Contract(string WebUrl, string BrokerUrl, string ApiToken, string PreviewDomain);

    public static async Task<List<Figure>> RunAsync(string[] args)
    {
        var home = Path.Combine(Path.GetTempPath(), "sv-bench-app-" + Guid.NewGuid().ToString("N")[..8]);
        var rows = new List<Figure>();
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
            for (var i = 0; i < Measured; i++)
            {
                var t = await TimeToPreviewAsync(api, previews, contract, id => last = id);
                Console.Error.WriteLine($"time to preview #{i + 1}: {t.TotalSeconds:0.00} s");
                times.Add(t.TotalSeconds);
            }

            // Restart (issue 14): the same, stopped project started again, POST → first 200 through the relay.
            var restarts = new List<double>();
            for (var i = 0; i < Measured; i++)
            {
                var t = await RestartAsync(api, previews, contract, last!);
                Console.Error.WriteLine($"restart #{i + 1}: {t.TotalSeconds:0.00} s");
                restarts.Add(t.TotalSeconds);
            }

            // The floor for any tool: vite itself starting in a folder whose node_modules are already there.
            // The first by-hand run also installs, which is what a project costs without the install cache.
            var byHand = Path.Combine(home, "baseline");
            var withInstall = await NpmBaselineAsync(previews, byHand, install: true);
            Console.Error.WriteLine($"npm install + vite by hand: {withInstall.TotalSeconds:0.00} s");
            var baselines = new List<double>();
            for (var i = 0; i < Measured; i++)
            {
                var t = await NpmBaselineAsync(previews, byHand, install: false);
                Console.Error.WriteLine($"vite alone, node_modules present #{i + 1}: {t.TotalSeconds:0.00} s");
                baselines.Add(t.TotalSeconds);
            }

            // The same in the browser (issue 14): the "Start dev server" click to the app rendered in the panel's frame.
            var (clicks, rendered) = await BrowserRestartsAsync(api, contract, last!, args, byHand);

            var (p50, _) = Report.Percentiles(times);
            var (b50, _) = Report.Percentiles(baselines);
            rows.Add(new($"Warm time to preview, vite-react, agent none (N={Measured})",
                string.Create(CultureInfo.InvariantCulture, $"p50 {p50:0.00} s, max {times.Max():0.00} s"),
                string.Create(CultureInfo.InvariantCulture, $"vite alone, node_modules present: p50 {b50:0.00} s, max {baselines.Max():0.00} s"),
                $"p50 {Report.Ratio(p50, b50)}", "≤ 5 s", times.Max() <= 5));
            var (r50, _) = Report.Percentiles(restarts);
            rows.Add(new($"Restart of a stopped vite-react project, start → first 200 through the relay (N={Measured})",
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
        // Stop it so the next run does not share the machine with an idle vite.
        await api.PostAsync($"/api/projects/{id}/dev-server/stop", null);
        return elapsed;
    }

    /// <summary>
    /// Stops the project (waits until the row says stopped), then times POST dev-server/start → first 200 through the
    /// relay, and prints each leg from the runner's event timestamps (same machine, same clock).
    /// </summary>
    private static async Task<TimeSpan> RestartAsync(HttpClient api, HttpClient previews, Contract contract, string id)
    {
        await api.PostAsync($"/api/projects/{id}/dev-server/stop", null);
        var waited = Stopwatch.StartNew();
        JsonElement project;
        while (true)
        {
            project = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
            var status = project.GetProperty("devServer").GetProperty("status").GetString();
            if (status is not ("running" or "starting")) break;
            if (waited.Elapsed > ReadyTimeout) throw new TimeoutException($"project {id} did not stop.");
            await Task.Delay(50);
        }
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
            await Task.Delay(50);
        }
        var elapsed = clock.Elapsed;

        var legs = (await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events?after={after}&limit=1000")).EnumerateArray()
            .Select(e => (Type: e.GetProperty("type").GetString(), At: e.GetProperty("timestamp").GetDateTimeOffset())).ToList();
        string At(string type) => legs.FirstOrDefault(l => l.Type == type) is { Type: not null } l
            ? string.Create(CultureInfo.InvariantCulture, $"{(l.At - posted).TotalMilliseconds:0}") : "?";
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  restart legs (ms after POST): accepted {accepted.TotalMilliseconds:0}, dev-server-starting {At("dev-server-starting")}, " +
            $"port-detected {At("port-detected")}, first 200 through the relay {elapsed.TotalMilliseconds:0}"));
        return elapsed;
    }

    /// <summary>Stops the project by the API, then in Chromium clicks "Start dev server" and waits for the app's text in the frame.</summary>
    private static async Task<(List<double> Clicks, List<double> ViteAlone)> BrowserRestartsAsync(HttpClient api, Contract contract, string id, string[] args, string byHand)
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
                $"    {since.ElapsedMilliseconds,6} ms done {r.Method} {r.Url} (started {r.Timing.StartTime:0}, response at +{r.Timing.ResponseEnd:0} ms)"));
        }
        for (var i = 0; i < Measured; i++)
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
            await page.Locator("iframe.preview-frame").WaitForAsync();
            var framed = clock.Elapsed;
            await page.FrameLocator("iframe.preview-frame").GetByText("Your app is").WaitForAsync();
            var rendered = clock.Elapsed;
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
        for (var i = -1; i < Measured; i++)
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
