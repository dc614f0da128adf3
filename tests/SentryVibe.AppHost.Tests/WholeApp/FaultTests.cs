using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Npgsql;
using SentryVibe.Testing;
using Xunit;
using Xunit.Abstractions;
using static SentryVibe.Testing.ScriptedBlock;

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

        // A browser tab follows the live stream until the web dies, then resumes it with Last-Event-ID. The web dies as soon
        // as the build's first event is out, so the outage overlaps real work: the template copied, its dependencies
        // installed or restored from the runner's cache, the dev server started. (Waiting for the dev server to be
        // "starting" left only the dev server's own start, about a second with the cache warm, and the preview URL could
        // be stored before the web was down.)
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

    [Fact]
    public async Task Stopping_the_runner_mid_turn_cancels_the_build_truthfully_leaves_no_process_and_runs_nothing_twice()
    {
        using var api = App.CreateApiClient();
        var model = fixture.Model;
        var hold = new TaskCompletionSource();
        var mainRequestsBefore = model.Requests.Count;
        Assert.Equal(0, model.PendingReplies); // the model's script is shared by the tests; each one uses up its own
        model.Enqueue(new ScriptedReply([Text("Thinking…")]) { Gate = hold.Task }).EnqueueText("Done after the restart.");
        try
        {
            var created = await api.PostAsJsonAsync("/api/projects", new { prompt = "Create a React app while the runner restarts", templateId = "vite-react", agent = "claude-code" });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;

            // Mid-turn: the agent's CLI is waiting on the model's answer.
            await Eventually.WaitAsync(() => Task.FromResult(model.Requests.Count == mainRequestsBefore + 1), ReadyTimeout, "the agent's request to the model");
            var project = await WaitForProjectAsync(api, id, p => Status(p) == "building", ReportTimeout, "the build to be under way");
            var folder = project.GetProperty("path").GetString()!;
            var workspace = Path.GetDirectoryName(folder)!;
            var agent = ProcessProbe.RunningIn(folder);
            Assert.NotEmpty(agent);
            output.WriteLine("agent processes: " + string.Join("; ", agent.Select(p => $"{p.Pid} {p.CommandLine}")));

            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                await App.StopAsync("runner");
                output.WriteLine($"runner stopped in {clock.Elapsed.TotalSeconds:0.0} s");

                // Nothing the runner started survives it: not the agent, nor a dev server of any project.
                Assert.All(agent, p => Assert.False(ProcessProbe.IsAlive(p.Pid), $"{p.Pid} {p.CommandLine} outlived the runner"));
                Assert.Empty(ProcessProbe.RunningIn(workspace));

                clock.Restart();
                await App.StartAgainAsync("runner");
                output.WriteLine($"runner started again in {clock.Elapsed.TotalSeconds:0.0} s");
            }
            finally
            {
                await App.EnsureRunningAsync("runner");
            }

            project = await WaitForProjectAsync(api, id, p => Status(p) == "cancelled", ReportTimeout, "the build to be reported cancelled");
            Assert.Contains("shutting down", project.GetProperty("statusReason").GetString());

            // The project goes on from where it stopped; by the time this turn has run, a redelivered build would have too.
            var message = await api.PostAsJsonAsync($"/api/projects/{id}/messages", new { prompt = "Carry on" });
            Assert.Equal(HttpStatusCode.Accepted, message.StatusCode);
            project = await WaitForProjectAsync(api, id, p => Status(p) == "ready", ReadyTimeout, "the follow-up turn to complete");

            Assert.Equal(mainRequestsBefore + 2, model.Requests.Count); // the held turn and the follow-up, nothing else
            var events = await ReadAllEventsAsync(api, id);
            AssertStrictlyIncreasing(events.Select(e => e.GetProperty("id").GetInt64()).ToList());
            AssertNoRepeatedEvents(events);
            Assert.Equal([1, 2], events.Where(e => Type(e) == "build-started").Select(e => e.GetProperty("data").GetProperty("turn").GetInt32()));
            Assert.Single(events, e => Type(e) == "build-cancelled");
            Assert.Single(events, e => Type(e) == "build-completed");
            await AssertCommandsRanOnceAsync(id);
            await AssertRunnerLogIsWholeAsync(Runner(project));
            await AssertDevServersAreWhatTheySayAsync(api);
        }
        finally
        {
            hold.TrySetResult();
        }
    }

    [Fact]
    public async Task Killing_the_runner_mid_turn_reports_the_build_interrupted_and_the_dev_servers_stopped_once_it_is_back_and_leaves_no_process()
    {
        using var api = App.CreateApiClient();
        var served = await CreateProjectAsync(api, "Create a React page served when the runner crashes");
        var servedProject = await WaitForProjectAsync(api, served, p => Status(p) == "ready" && DevServer(p) == "running", ReadyTimeout, "ready with a running dev server");
        var servedFolder = servedProject.GetProperty("path").GetString()!;
        var servedPreview = servedProject.GetProperty("devServer").GetProperty("previewUrl").GetString()!;
        var model = fixture.Model;
        var hold = new TaskCompletionSource();
        var mainRequestsBefore = model.Requests.Count;
        Assert.Equal(0, model.PendingReplies); // the model's script is shared by the tests; each one uses up its own
        model.Enqueue(new ScriptedReply([Text("Thinking…")]) { Gate = hold.Task });
        try
        {
            var created = await api.PostAsJsonAsync("/api/projects", new { prompt = "Create a React app while the runner crashes", templateId = "vite-react", agent = "claude-code" });
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var id = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
            await Eventually.WaitAsync(() => Task.FromResult(model.Requests.Count == mainRequestsBefore + 1), ReadyTimeout, "the agent's request to the model");
            var project = await WaitForProjectAsync(api, id, p => Status(p) == "building", ReportTimeout, "the build to be under way");
            var folder = project.GetProperty("path").GetString()!;
            var agent = ProcessProbe.RunningIn(folder);
            Assert.NotEmpty(agent);

            // The runner process itself (under `dotnet run`) dies at once, as in a crash: no shutdown code of it runs.
            var host = App.PidOf("runner");
            var runner = ProcessProbe.ChildrenOf(host).Select(ProcessProbe.Describe).Single(p => p!.CommandLine.Contains("sentryvibe-runner", StringComparison.OrdinalIgnoreCase))!;
            output.WriteLine($"killing runner pid {runner.Pid}: {runner.CommandLine}");
            try
            {
                using (var process = System.Diagnostics.Process.GetProcessById(runner.Pid))
                {
                    process.Kill();
                }
                await Eventually.WaitAsync(() => Task.FromResult(!ProcessProbe.IsAlive(host)), ReportTimeout, "the runner resource to end");
                output.WriteLine("left behind: " + string.Join("; ", ProcessProbe.RunningIn(Path.GetDirectoryName(folder)!).Select(p => $"{p.Pid} {p.CommandLine[..Math.Min(80, p.CommandLine.Length)]}")));
                await App.StartAgainAsync("runner");
            }
            finally
            {
                await App.EnsureRunningAsync("runner");
            }

            project = await WaitForProjectAsync(api, id, p => Status(p) == "failed", ReportTimeout, "the build to be reported interrupted");
            Assert.Contains("stopped in the middle of this build", project.GetProperty("statusReason").GetString());
            servedProject = await WaitForProjectAsync(api, served, p => DevServer(p) == "stopped", ReportTimeout, "the orphaned dev server to be reported stopped");
            Assert.Contains(servedProject.GetProperty("devServer").GetProperty("lastLines").EnumerateArray(), l => l.GetString()!.Contains("runner stopped"));

            // What the dead runner started, the new one ended: the held agent and the dev server in its own session.
            Assert.Empty(ProcessProbe.RunningIn(folder));
            Assert.Empty(ProcessProbe.RunningIn(servedFolder));
            using var http = LoopbackHttp.Create();
            var preview = await http.GetAsync(servedPreview);
            Assert.Equal("Dev server stopped", preview.Headers.GetValues("X-SentryVibe-Preview").Single());
            await AssertRunnerLogIsWholeAsync(Runner(project));
            await AssertDevServersAreWhatTheySayAsync(api);
        }
        finally
        {
            hold.TrySetResult();
        }
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

    /// <summary>
    /// Every command for the project reached the runner and was taken on. (A redelivery after a lost ack is allowed and
    /// shows in Attempts; that it did not run again is what the events and the model's requests show.)
    /// </summary>
    private async Task AssertCommandsRanOnceAsync(string projectId)
    {
        await using var db = await App.OpenDatabaseAsync();
        await using var query = new NpgsqlCommand("""SELECT "Type", "Status", "Attempts" FROM commands WHERE "ProjectId" = @project ORDER BY "CreatedAt" """, db);
        query.Parameters.AddWithValue("project", Guid.Parse(projectId));
        await using var rows = await query.ExecuteReaderAsync();
        var commands = new List<(string Type, string Status, int Attempts)>();
        while (await rows.ReadAsync()) commands.Add((rows.GetString(0), rows.GetString(1), rows.GetInt32(2)));
        output.WriteLine("commands: " + string.Join(", ", commands));
        Assert.NotEmpty(commands);
        Assert.All(commands, c => Assert.Contains(c.Status, new[] { "acked", "completed" }));
    }

    /// <summary>Across the app: a dev server the API calls running listens on its port from its folder; any other runs nothing.</summary>
    private async Task AssertDevServersAreWhatTheySayAsync(HttpClient api)
    {
        var projects = await api.GetFromJsonAsync<List<JsonElement>>("/api/projects");
        foreach (var p in projects!)
        {
            if (p.GetProperty("path").GetString() is not { } folder) continue;
            var dev = p.GetProperty("devServer");
            output.WriteLine($"{p.GetProperty("slug").GetString()}: {Status(p)}, dev server {DevServer(p)}");
            if (DevServer(p) == "running")
            {
                var listener = ProcessProbe.ListenerOf(dev.GetProperty("port").GetInt32());
                Assert.True(listener is { } pid && ProcessProbe.Describe(pid)?.WorkingDirectory.StartsWith(folder, StringComparison.Ordinal) == true,
                    $"{folder} is said to run on port {dev.GetProperty("port")}, but that port is not its server's");
            }
            else if (DevServer(p) is "stopped" or "failed")
            {
                Assert.Empty(ProcessProbe.RunningIn(folder));
            }
        }
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

/// <summary>
/// An app of their own for the fault tests: they kill its parts, which the shared app's tests must not see. Its runner's
/// Claude Code talks to a scripted model, so a build can be held in the middle of an agent turn.
/// </summary>
public sealed class FaultAppFixture : IAsyncLifetime
{
    private readonly string _home = RunningApp.NewHome();

    public RunningApp App { get; private set; } = null!;

    public ScriptedAnthropicServer Model { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!ProcessProbe.Supported) throw new PlatformNotSupportedException("The fault tests read /proc to find and check processes.");
        Model = await ScriptedAnthropicServer.StartAsync();
        App = await RunningApp.StartAsync(_home, builder => builder.CreateResourceBuilder<ProjectResource>("runner")
            .WithEnvironment("Agents__AnthropicBaseUrl", Model.BaseUrl)
            .WithEnvironment("Agents__AnthropicApiKey", "sk-test"));
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (App is not null) await App.DisposeAsync();
            if (Model is not null) await Model.DisposeAsync();
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
