using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class EventStreamTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    [Fact]
    public async Task Events_list_as_json_in_id_order_after_a_given_id()
    {
        var id = (await CreateProjectAsync(new { prompt = "json events" })).GetProperty("id").GetGuid();
        var a = await AppendEventAsync(id, new BuildStarted("json events", "vite-react", Agents.ClaudeCode));
        var b = await AppendEventAsync(id, new AgentMessage("Scaffolding…"));

        using var client = Api();
        var all = await JsonAsync(await client.GetAsync($"/api/projects/{id}/events"));
        Assert.Equal([EventTypes.UserMessage, EventTypes.BuildStarted, EventTypes.AgentMessage], all.EnumerateArray().Select(e => e.GetProperty("type").GetString()));

        var after = await JsonAsync(await client.GetAsync($"/api/projects/{id}/events?after={a}"));
        var only = Assert.Single(after.EnumerateArray());
        Assert.Equal(b, only.GetProperty("id").GetInt64());
        Assert.Equal(id, only.GetProperty("projectId").GetGuid());
        Assert.Equal("Scaffolding…", only.GetProperty("data").GetProperty("text").GetString());
        Assert.Equal(EventTypes.AgentMessage, only.GetProperty("data").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Events_the_broker_appends_arrive_live_in_order()
    {
        var id = (await CreateProjectAsync(new { prompt = "live events" })).GetProperty("id").GetGuid();
        using var client = Api();
        await using var stream = await SseStream.OpenAsync(client, $"/api/projects/{id}/events", lastEventId: null);

        // The backlog first: the user's prompt.
        var backlog = await stream.NextAsync();
        Assert.Equal(EventTypes.UserMessage, backlog.Type);

        var appended = new List<long>();
        for (var i = 0; i < 5; i++) appended.Add(await AppendEventAsync(id, new BuildLog($"line {i}")));

        var live = new List<SseMessage>();
        for (var i = 0; i < 5; i++) live.Add(await stream.NextAsync());
        Assert.Equal(appended, live.Select(m => m.Id));
        Assert.All(live, m => Assert.Equal(EventTypes.BuildLog, m.Type));
        Assert.Equal("line 4", JsonDocument.Parse(live[^1].Data).RootElement.GetProperty("data").GetProperty("message").GetString());
        Assert.Equal(live[^1].Id, JsonDocument.Parse(live[^1].Data).RootElement.GetProperty("id").GetInt64());
    }

    [Fact]
    public async Task A_reconnect_with_Last_Event_ID_resumes_without_gaps_or_duplicates()
    {
        var id = (await CreateProjectAsync(new { prompt = "resume events" })).GetProperty("id").GetGuid();
        using var client = Api();
        var seen = new List<long>();

        await using (var first = await SseStream.OpenAsync(client, $"/api/projects/{id}/events", lastEventId: null))
        {
            seen.Add((await first.NextAsync()).Id);
            await AppendEventAsync(id, new BuildLog("before disconnect"));
            seen.Add((await first.NextAsync()).Id);
        }

        // Written while nobody listens.
        await AppendEventAsync(id, new BuildLog("while away 1"));
        await AppendEventAsync(id, new BuildLog("while away 2"));

        await using (var second = await SseStream.OpenAsync(client, $"/api/projects/{id}/events", lastEventId: seen[^1]))
        {
            seen.Add((await second.NextAsync()).Id);
            seen.Add((await second.NextAsync()).Id);
            await AppendEventAsync(id, new BuildLog("after reconnect"));
            seen.Add((await second.NextAsync()).Id);
        }

        using var all = await client.GetAsync($"/api/projects/{id}/events");
        var expected = (await JsonAsync(all)).EnumerateArray().Select(e => e.GetProperty("id").GetInt64()).ToList();
        Assert.Equal(5, expected.Count);
        Assert.Equal(expected, seen);
    }

    [Fact]
    public async Task An_idle_stream_gets_keep_alive_comments()
    {
        var id = (await CreateProjectAsync(new { prompt = "quiet" })).GetProperty("id").GetGuid();
        using var client = Api();
        await using var stream = await SseStream.OpenAsync(client, $"/api/projects/{id}/events", lastEventId: null);
        await stream.NextAsync();
        await stream.WaitForCommentAsync();
    }

    [Fact]
    public async Task The_stream_of_an_unknown_project_is_a_404_problem()
    {
        using var client = Api();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/projects/{Guid.NewGuid()}/events");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}

public sealed record SseMessage(long Id, string Type, string Data);

/// <summary>A minimal server-sent-events reader with a timeout on every read.</summary>
public sealed class SseStream : IAsyncDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(15);
    private readonly HttpResponseMessage _response;
    private readonly StreamReader _reader;
    private readonly CancellationTokenSource _cts = new();

    private SseStream(HttpResponseMessage response, Stream body)
    {
        _response = response;
        _reader = new StreamReader(body, Encoding.UTF8);
    }

    public static async Task<SseStream> OpenAsync(HttpClient client, string path, long? lastEventId)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is { } last) request.Headers.Add("Last-Event-ID", last.ToString());
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return new SseStream(response, await response.Content.ReadAsStreamAsync());
    }

    public async Task<SseMessage> NextAsync()
    {
        long? id = null;
        string? type = null;
        var data = new StringBuilder();
        while (true)
        {
            var line = await ReadLineAsync() ?? throw new EndOfStreamException("The event stream ended.");
            if (line.Length == 0)
            {
                if (id is not null) return new SseMessage(id.Value, type ?? "message", data.ToString());
                continue;
            }
            if (line.StartsWith("id: ", StringComparison.Ordinal)) id = long.Parse(line[4..]);
            else if (line.StartsWith("event: ", StringComparison.Ordinal)) type = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal)) data.Append(line[6..]);
        }
    }

    public async Task WaitForCommentAsync()
    {
        while (true)
        {
            var line = await ReadLineAsync() ?? throw new EndOfStreamException("The event stream ended.");
            if (line.StartsWith(':')) return;
        }
    }

    private async Task<string?> ReadLineAsync()
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token);
        timeout.CancelAfter(ReadTimeout);
        try
        {
            return await _reader.ReadLineAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!_cts.IsCancellationRequested)
        {
            throw new TimeoutException($"No event-stream line within {ReadTimeout.TotalSeconds} s.");
        }
    }

    public ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _reader.Dispose();
        _response.Dispose();
        _cts.Dispose();
        return ValueTask.CompletedTask;
    }
}
