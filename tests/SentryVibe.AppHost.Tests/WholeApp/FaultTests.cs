using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Npgsql;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;

namespace SentryVibe.AppHost.Tests.WholeApp;

/// <summary>
/// Whole-system faults in the middle of real work (issue 9): a service or a dev server dies, and afterwards no event is
/// lost or doubled, nothing ran twice, the project tells the truth, nothing is left running, and what can answer did.
/// </summary>
[Collection(FaultCollection.Name)]
public sealed class FaultTests(FaultAppFixture fixture, ITestOutputHelper output)
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromMinutes(4); // npm install of the template included
    private static readonly TimeSpan ReportTimeout = TimeSpan.FromMinutes(1);

    private RunningApp App => fixture.App;

    [Fact]
    public async Task Killing_the_web_mid_build_loses_no_event_the_broker_keeps_taking_them_and_the_project_comes_up_ready()
    {
        using var api = App.CreateApiClient();
        var id = await CreateProjectAsync(api, "Create a React counter that survives a web crash");

        // The outage must overlap real work: the runner is installing the template's dependencies.
        await WaitForProjectAsync(api, id, p => DevServer(p) == "starting", ReadyTimeout, "the dev server to be starting");

        // A browser tab follows the live stream until the web dies, then resumes it with Last-Event-ID.
        using var sse = new HttpClient { BaseAddress = new Uri(App.Contract.WebUrl), Timeout = Timeout.InfiniteTimeSpan };
        sse.DefaultRequestHeaders.Authorization = new("Bearer", App.Contract.ApiToken);
        var streamed = new List<long>();
        using var firstStream = new CancellationTokenSource(ReadyTimeout);
        var firstReader = ReadStreamAsync(sse, id, lastEventId: null, streamed, until: _ => false, firstStream.Token);
        await Eventually.WaitAsync(() => Task.FromResult(Snapshot(streamed).Count > 0), ReportTimeout, "the stream to deliver the backlog");

        DateTimeOffset downAt, upAt;
        string previewUrl;
        try
        {
            output.WriteLine($"killing web: {ProcessProbe.Describe(App.PidOf("web"))?.CommandLine}");
            downAt = DateTimeOffset.UtcNow;
            await App.KillAsync("web");
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => api.GetAsync("/health"));
            var firstEnd = await Record.ExceptionAsync(() => firstReader).WaitAsync(ReportTimeout);
            output.WriteLine($"stream ended with {firstEnd?.GetType().Name ?? "EOF"} after {Snapshot(streamed).Count} events");

            // Without the web, the broker still takes the runner's events into the log and still serves the preview.
            await using (var db = await App.OpenDatabaseAsync())
            {
                previewUrl = await Eventually.WaitAsync(() => PreviewUrlIngestedSinceAsync(db, id, downAt), ReadyTimeout,
                    "the broker to record the dev server's preview URL while the web is down", TimeSpan.FromMilliseconds(250));
            }
            using (var http = LoopbackHttp.Create())
            {
                var page = await http.GetAsync(previewUrl);
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
                Assert.Contains("<div id=\"root\">", await page.Content.ReadAsStringAsync());
            }
            upAt = DateTimeOffset.UtcNow;
            await App.StartAgainAsync("web");
            output.WriteLine($"web down for {(upAt - downAt).TotalSeconds:0.0} s, back after {(DateTimeOffset.UtcNow - upAt).TotalSeconds:0.0} s");
        }
        finally
        {
            await App.EnsureRunningAsync("web");
        }

        var project = await WaitForProjectAsync(api, id, p => Status(p) == "ready" && DevServer(p) == "running", ReadyTimeout, "ready with a running dev server");
        Assert.Equal(previewUrl, project.GetProperty("devServer").GetProperty("previewUrl").GetString());

        var events = await ReadAllEventsAsync(api, id);
        var ids = events.Select(e => e.GetProperty("id").GetInt64()).ToList();
        AssertStrictlyIncreasing(ids);
        AssertNoRepeatedEvents(events);
        Assert.Contains(events, e => e.GetProperty("timestamp").GetDateTimeOffset() is var t && t > downAt && t < upAt);
        Assert.Single(events, e => Type(e) == "build-started");
        Assert.Single(events, e => Type(e) == "build-completed");
        Assert.Single(events, e => Type(e) == "port-detected");
        Assert.DoesNotContain(events, e => Type(e) == "dev-server-exited");

        // The resumed stream fills exactly the gap: together the two streams are the log, nothing missing, nothing twice.
        using var secondStream = new CancellationTokenSource(ReportTimeout);
        await ReadStreamAsync(sse, id, Snapshot(streamed).Last(), streamed, until: e => e >= ids[^1], secondStream.Token);
        Assert.Equal(ids, Snapshot(streamed).Where(e => e <= ids[^1]));

        await AssertRunnerLogIsWholeAsync(Runner(project));
    }

    [Fact]
    public async Task A_killed_dev_server_is_reported_failed_with_its_last_lines_and_the_preview_says_so_until_it_is_started_again()
    {
        using var api = App.CreateApiClient();
        var id = await CreateProjectAsync(api, "Create a React page whose dev server will crash");
        var project = await WaitForProjectAsync(api, id, p => Status(p) == "ready" && DevServer(p) == "running", ReadyTimeout, "ready with a running dev server");
        var folder = project.GetProperty("path").GetString()!;
        var port = project.GetProperty("devServer").GetProperty("port").GetInt32();
        var previewUrl = project.GetProperty("devServer").GetProperty("previewUrl").GetString()!;

        var listener = ProcessProbe.ListenerOf(port) ?? throw new Xunit.Sdk.XunitException($"nothing listens on the dev server's port {port}");
        var victim = ProcessProbe.Describe(listener);
        output.WriteLine($"killing pid {listener}: {victim?.CommandLine} (in {victim?.WorkingDirectory})");
        Assert.StartsWith(folder, victim?.WorkingDirectory);
        using (var process = System.Diagnostics.Process.GetProcessById(listener))
        {
            process.Kill(); // SIGKILL to the server alone: its npm parent and helpers are left to the runner to notice
        }

        project = await WaitForProjectAsync(api, id, p => DevServer(p) == "failed", ReportTimeout, "the dev server to be reported failed");
        var dev = project.GetProperty("devServer");
        Assert.Equal("crashed", dev.GetProperty("reason").GetString());
        Assert.Equal(JsonValueKind.Number, dev.GetProperty("exitCode").ValueKind);
        Assert.NotEqual(0, dev.GetProperty("exitCode").GetInt32());
        Assert.NotEmpty(dev.GetProperty("lastLines").EnumerateArray());
        Assert.Equal("ready", Status(project)); // the build did not fail; its server did

        // Nothing of the dead server lingers: npm, its shell, vite's esbuild service are all gone.
        await Eventually.WaitAsync(() => Task.FromResult(ProcessProbe.RunningIn(folder).Count == 0), ReportTimeout,
            "no process left in the project folder", TimeSpan.FromMilliseconds(200));

        using var http = LoopbackHttp.Create();
        var crashed = await http.GetAsync(previewUrl);
        Assert.Equal(HttpStatusCode.BadGateway, crashed.StatusCode);
        Assert.Equal("text/html", crashed.Content.Headers.ContentType?.MediaType);
        Assert.Equal("The dev server crashed", crashed.Headers.GetValues("X-SentryVibe-Preview").Single());
        Assert.Contains($"with code {dev.GetProperty("exitCode").GetInt32()}", await crashed.Content.ReadAsStringAsync());

        var start = await api.PostAsync($"/api/projects/{id}/dev-server/start", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        project = await WaitForProjectAsync(api, id, p => DevServer(p) == "running", ReadyTimeout, "the dev server to run again");
        var again = await http.GetAsync(project.GetProperty("devServer").GetProperty("previewUrl").GetString());
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Contains("<div id=\"root\">", await again.Content.ReadAsStringAsync());

        var events = await ReadAllEventsAsync(api, id);
        AssertStrictlyIncreasing(events.Select(e => e.GetProperty("id").GetInt64()).ToList());
        AssertNoRepeatedEvents(events);
        Assert.Single(events, e => Type(e) == "dev-server-exited");
        Assert.Equal(2, events.Count(e => Type(e) == "port-detected"));
        await AssertRunnerLogIsWholeAsync(Runner(project));
    }

    private static async Task<string> CreateProjectAsync(HttpClient api, string prompt)
    {
        var created = await api.PostAsJsonAsync("/api/projects", new { prompt, templateId = "vite-react", agent = "none" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        return (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> WaitForProjectAsync(HttpClient api, string id, Func<JsonElement, bool> condition, TimeSpan timeout, string what)
    {
        JsonElement? last = null;
        try
        {
            return await Eventually.WaitAsync<JsonElement?>(async () =>
            {
                last = await api.GetFromJsonAsync<JsonElement>($"/api/projects/{id}");
                return condition(last.Value) ? last : null;
            }, timeout, what, TimeSpan.FromMilliseconds(250)) ?? throw new InvalidOperationException();
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\nLast seen: {last}", e);
        }
    }

    private static async Task<List<JsonElement>> ReadAllEventsAsync(HttpClient api, string id)
    {
        var all = new List<JsonElement>();
        while (true)
        {
            var after = all.Count == 0 ? 0 : all[^1].GetProperty("id").GetInt64();
            var page = await api.GetFromJsonAsync<List<JsonElement>>($"/api/projects/{id}/events?after={after}");
            if (page is null || page.Count == 0) return all;
            all.AddRange(page);
        }
    }

    /// <summary>Reads the SSE stream, adding each event's id to <paramref name="ids"/>, until <paramref name="until"/> says so or it ends.</summary>
    private static async Task ReadStreamAsync(HttpClient client, string id, long? lastEventId, List<long> ids, Func<long, bool> until, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/projects/{id}/events");
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (lastEventId is { } last) request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (!line.StartsWith("id: ", StringComparison.Ordinal)) continue;
            var eventId = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
            lock (ids) ids.Add(eventId);
            if (until(eventId)) return;
        }
    }

    private static List<long> Snapshot(List<long> ids)
    {
        lock (ids) return [.. ids];
    }

    private static async Task<string?> PreviewUrlIngestedSinceAsync(NpgsqlConnection db, string projectId, DateTimeOffset since)
    {
        await using var query = new NpgsqlCommand("""
            SELECT "Payload"::jsonb ->> 'previewUrl' FROM events
            WHERE "ProjectId" = @project AND "Type" = 'port-detected' AND "CreatedAt" > @since
            """, db);
        query.Parameters.AddWithValue("project", Guid.Parse(projectId));
        query.Parameters.AddWithValue("since", since.UtcDateTime);
        return await query.ExecuteScalarAsync() as string;
    }

    /// <summary>
    /// No event of the runner is missing or doubled anywhere in the log: its seqs are exactly 1..n, and n is what the
    /// broker last acknowledged, so the runner holds nothing that the log lacks.
    /// </summary>
    private async Task AssertRunnerLogIsWholeAsync(string runnerId)
    {
        await using var db = await App.OpenDatabaseAsync();
        await using var query = new NpgsqlCommand("""
            SELECT count(*), count(DISTINCT "Seq"), coalesce(min("Seq"), 0), coalesce(max("Seq"), 0),
                   (SELECT "CommittedSeq" FROM runners WHERE "Id" = @runner)
            FROM events WHERE "RunnerId" = @runner
            """, db);
        query.Parameters.AddWithValue("runner", runnerId);
        await using var row = await query.ExecuteReaderAsync();
        Assert.True(await row.ReadAsync());
        var (count, distinct, min, max, committed) = (row.GetInt64(0), row.GetInt64(1), row.GetInt64(2), row.GetInt64(3), row.GetInt64(4));
        output.WriteLine($"runner {runnerId}: {count} events, seq {min}..{max}, committed {committed}");
        Assert.Equal(1, min);
        Assert.Equal(count, distinct);
        Assert.Equal(max, count);
        Assert.Equal(max, committed);
    }

    private static void AssertStrictlyIncreasing(IReadOnlyList<long> ids)
    {
        Assert.NotEmpty(ids);
        for (var i = 1; i < ids.Count; i++)
        {
            Assert.True(ids[i] > ids[i - 1], $"event {ids[i]} follows {ids[i - 1]}");
        }
    }

    /// <summary>An event ingested twice would show up with a new id but the same moment and body.</summary>
    private static void AssertNoRepeatedEvents(IReadOnlyList<JsonElement> events)
    {
        var repeated = events
            .GroupBy(e => (e.GetProperty("timestamp").GetRawText(), e.GetProperty("data").GetRawText()))
            .Where(g => g.Count() > 1)
            .Select(g => g.Key.Item2)
            .ToList();
        Assert.True(repeated.Count == 0, "repeated events: " + string.Join("\n", repeated));
    }

    private static string? Status(JsonElement project) => project.GetProperty("status").GetString();

    private static string? DevServer(JsonElement project) => project.GetProperty("devServer").GetProperty("status").GetString();

    private static string Runner(JsonElement project) => project.GetProperty("runnerId").GetString()!;

    private static string? Type(JsonElement e) => e.GetProperty("type").GetString();
}

/// <summary>An app of their own for the fault tests: they kill its parts, which the shared app's tests must not see.</summary>
public sealed class FaultAppFixture : IAsyncLifetime
{
    private readonly string _home = RunningApp.NewHome();

    public RunningApp App { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!ProcessProbe.Supported) throw new PlatformNotSupportedException("The fault tests read /proc to find and check processes.");
        App = await RunningApp.StartAsync(_home);
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (App is not null) await App.DisposeAsync();
        }
        finally
        {
            RunningApp.DeleteHome(_home);
        }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultCollection : ICollectionFixture<FaultAppFixture>
{
    public const string Name = "whole app faults";
}
