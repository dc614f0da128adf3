// First paint of the web UI in Chromium (issue 14): the same Web build twice on one database, with prerendering (the
// default) and without (SentryVibe:Prerender=false, the baseline in the same run: a blank page until the Blazor
// circuit has connected and rendered). For the new-project page and a project page with a conversation: first
// contentful paint (performance.getEntriesByName('first-contentful-paint')) and the moment its input takes typing.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using SentryVibe.Data;
using SentryVibe.LocalPostgres;
using SentryVibe.Protocol;

namespace SentryVibe.Bench;

public static class FirstPaintScenario
{
    private const int Measured = 9;
    private const string ApiToken = "bench-first-paint-token-0123456789";
    private const string Chromium = "/usr/bin/chromium";

    public static async Task<List<Figure>> RunAsync(string[] args)
    {
        var rows = new List<Figure>();
        if (!File.Exists(Chromium))
        {
            Console.Error.WriteLine($"no {Chromium}: the first paint lines are skipped");
            return rows;
        }
        var root = Path.Combine(Path.GetTempPath(), "sv-bench-paint-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var binaries = PostgresBinaries.Find() ?? throw new InvalidOperationException(PostgresBinaries.InstallHint);
            await using var cluster = new PostgresCluster(binaries, Path.Combine(root, "pg"));
            await cluster.StartAsync();
            var db = await LinkScenario.CreateDatabaseAsync(cluster, "firstpaint");

            // One after the other: the first migrates the database.
            using var prerendered = WebProcess.Start(db, ApiToken, prerender: true);
            await prerendered.WaitReadyAsync();
            using var blank = WebProcess.Start(db, ApiToken, prerender: false);
            await blank.WaitReadyAsync();
            var project = await SeedAsync(prerendered.BaseUrl, db);

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchAsync(new()
            {
                ExecutablePath = Chromium,
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
            });
            var on = await SignedInPageAsync(browser, prerendered.BaseUrl);
            var off = await SignedInPageAsync(browser, blank.BaseUrl);

            var pages = new (string Label, string Path, string Input)[]
            {
                ("new-project page (/)", "/", "#prompt"),
                ("project page with a 60-event conversation", $"/projects/{project}", "#follow-up"),
            };
            foreach (var (label, path, input) in pages)
            {
                var withPrerender = new List<Paint>();
                var without = new List<Paint>();
                // The first of each is a warm-up (JIT, the browser's cache); then alternate so both see the same machine.
                for (var i = -1; i < Measured; i++)
                {
                    var a = await PaintAsync(on, prerendered.BaseUrl + path, input);
                    var b = await PaintAsync(off, blank.BaseUrl + path, input);
                    if (i < 0) continue;
                    withPrerender.Add(a);
                    without.Add(b);
                    Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{label} #{i + 1}: prerendered first byte {a.FirstByte:0} ms, FCP {a.Fcp:0} ms, typing {a.Interactive:0} ms; " +
                        $"without: first byte {b.FirstByte:0} ms, FCP {b.Fcp:0} ms, typing {b.Interactive:0} ms"));
                }
                var (f50, _) = Report.Percentiles(withPrerender.Select(p => p.Fcp).ToList());
                var (b50, _) = Report.Percentiles(without.Select(p => p.Fcp).ToList());
                var (i50, _) = Report.Percentiles(withPrerender.Select(p => p.Interactive).ToList());
                var (j50, _) = Report.Percentiles(without.Select(p => p.Interactive).ToList());
                rows.Add(new($"First contentful paint, {label}, Chromium (N={Measured})",
                    string.Create(CultureInfo.InvariantCulture, $"p50 {f50:0} ms, max {withPrerender.Max(p => p.Fcp):0} ms"),
                    string.Create(CultureInfo.InvariantCulture, $"prerendering off: p50 {b50:0} ms, max {without.Max(p => p.Fcp):0} ms"),
                    $"p50 {Report.Ratio(f50, b50)}", "before the circuit (< baseline p50)", f50 < b50));
                rows.Add(new($"Input takes typing, {label} (N={Measured})",
                    string.Create(CultureInfo.InvariantCulture, $"p50 {i50:0} ms"),
                    string.Create(CultureInfo.InvariantCulture, $"prerendering off: p50 {j50:0} ms"),
                    $"p50 {Report.Ratio(i50, j50)}", "—", null));
            }
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        return rows;
    }

    /// <summary>Milliseconds after navigation start: the response's first byte, first contentful paint, input takes typing.</summary>
    private sealed record Paint(double FirstByte, double Fcp, double Interactive);

    private static async Task<IPage> SignedInPageAsync(IBrowser browser, string baseUrl)
    {
        var context = await browser.NewContextAsync(new() { ViewportSize = new() { Width = 1400, Height = 900 } });
        context.SetDefaultTimeout(60_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync($"{baseUrl}/login?t={ApiToken}");
        await page.Locator("#prompt").WaitForAsync();
        return page;
    }

    /// <summary>A fresh load of <paramref name="url"/>: its first contentful paint, and when <paramref name="input"/> took typing (ms after navigation start).</summary>
    private static async Task<Paint> PaintAsync(IPage page, string url, string input)
    {
        await page.GotoAsync("about:blank");
        await page.GotoAsync(url, new() { WaitUntil = WaitUntilState.Commit });
        var fcp = await (await page.WaitForFunctionAsync(
            "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0",
            null, new() { PollingInterval = 10 })).JsonValueAsync<double>();
        var interactive = await (await page.WaitForFunctionAsync(
            $"() => {{ const e = document.querySelector('{input}'); return e && !e.matches(':disabled') ? performance.now() : 0; }}",
            null, new() { PollingInterval = 10, Timeout = 20_000 })).JsonValueAsync<double>();
        var firstByte = await page.EvaluateAsync<double>("() => performance.getEntriesByType('navigation')[0].responseStart");
        return new Paint(firstByte, fcp, interactive);
    }

    /// <summary>A few projects for the sidebar and one with a conversation the project page shows.</summary>
    private static async Task<Guid> SeedAsync(string baseUrl, string db)
    {
        await using var context = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(db).Options);
        var now = DateTimeOffset.UtcNow;
        // The owner's runner (the API token is the owner's): projects go only to their user's runners.
        var owner = await context.Users.Where(u => u.IsOwner).Select(u => (Guid?)u.Id).FirstOrDefaultAsync();
        context.Runners.Add(new SentryVibe.Data.Runner { Id = "bench-runner", OwnerId = owner, Name = "bench-runner", Status = RunnerStatuses.Online, LastSeenAt = now, CreatedAt = now });
        await context.SaveChangesAsync();

        using var api = new HttpClient { BaseAddress = new Uri(baseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiToken);
        Guid last = default;
        foreach (var prompt in new[] { "A kanban board", "A pomodoro timer", "A recipe finder", "A markdown notes app", "Create a React todo app" })
        {
            var created = await api.PostAsJsonAsync("/api/projects", new { prompt, templateId = "vite-react", agent = "none", runnerId = "bench-runner" });
            created.EnsureSuccessStatusCode();
            last = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
        }

        var events = new List<ProjectEvent> { new BuildStarted("Create a React todo app", "vite-react", Agents.None) };
        for (var i = 0; i < 20; i++)
        {
            events.Add(new AgentMessage($"Step {i}: I'll add **part {i}** of the app, with a list and an input."));
            events.Add(new ToolUse($"tool-{i}", "Write", $"src/Part{i}.tsx", ToolStatuses.Succeeded, "Wrote 30 lines"));
            events.Add(new BuildLog($"build line {i}"));
        }
        long seq = 0;
        foreach (var body in events)
        {
            context.Events.Add(new Event
            {
                RunnerId = "bench-runner",
                Seq = ++seq,
                ProjectId = last,
                Type = Discriminators.Of(body),
                Payload = JsonSerializer.Serialize(body, LinkProtocol.JsonOptions),
                Timestamp = now,
                CreatedAt = now,
            });
        }
        await context.SaveChangesAsync();
        return last;
    }
}

/// <summary>The Web app as its own process, from its build output next to this bench's configuration.</summary>
public sealed class WebProcess : IDisposable
{
    private readonly Process _process;

    private WebProcess(Process process, int port)
    {
        _process = process;
        BaseUrl = $"http://127.0.0.1:{port}";
    }

    public string BaseUrl { get; }

    public static WebProcess Start(string db, string apiToken, bool prerender)
    {
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "SentryVibe.sln"))) root = Path.GetDirectoryName(root.TrimEnd('/'))!;
        var dll = Path.Combine(root, "Web", "bin", configuration, "net10.0", "SentryVibe.Web.dll");
        var port = PostgresCluster.FreePort();
        // Development, as the AppHost runs it: static assets (blazor.web.js) come from the build's manifest.
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Path.Combine(root, "Web") };
        psi.ArgumentList.Add(dll);
        psi.Environment["ConnectionStrings__sentryvibe"] = db;
        psi.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Development";
        psi.Environment["SentryVibe__ApiToken"] = apiToken;
        psi.Environment["SentryVibe__Prerender"] = prerender ? "true" : "false";
        psi.Environment["SentryVibe__ExpiryScanInterval"] = "01:00:00";
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        var process = Process.Start(psi)!;
        var tag = prerender ? "[web prerendered] " : "[web] ";
        // Its log (warnings and errors only) goes to stdout.
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine(tag + e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine(tag + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new WebProcess(process, port);
    }

    public async Task WaitReadyAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            if (_process.HasExited) throw new InvalidOperationException($"Web exited with {_process.ExitCode}.");
            try
            {
                if ((await http.GetAsync($"{BaseUrl}/alive")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(100);
        }
        throw new TimeoutException("Web did not start.");
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
