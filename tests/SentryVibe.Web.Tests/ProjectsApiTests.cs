using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class ProjectsApiTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    [Fact]
    public async Task A_created_project_is_201_and_reads_back_as_200()
    {
        var created = await CreateProjectAsync(new { prompt = "Create a React todo app", name = "My Todos " + Guid.NewGuid().ToString("N")[..6] });
        var id = created.GetProperty("id").GetGuid();
        Assert.Equal(ProjectStatuses.Pending, created.GetProperty("status").GetString());
        Assert.StartsWith("my-todos-", created.GetProperty("slug").GetString());
        Assert.Equal("vite-react", created.GetProperty("templateId").GetString());
        Assert.Matches("^[0-9a-f]{32}$", created.GetProperty("previewId").GetString());
        Assert.Equal(DevServerStatuses.Stopped, created.GetProperty("devServer").GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Array, created.GetProperty("todos").ValueKind);

        using var client = Api();
        using var response = await client.GetAsync($"/api/projects/{id}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var read = await JsonAsync(response);
        Assert.Equal(created.GetProperty("slug").GetString(), read.GetProperty("slug").GetString());
        Assert.Equal("Create a React todo app", read.GetProperty("prompt").GetString());

        var list = await JsonAsync(await client.GetAsync("/api/projects"));
        Assert.Contains(list.EnumerateArray(), p => p.GetProperty("id").GetGuid() == id);
    }

    [Fact]
    public async Task Creating_a_project_writes_the_prompt_event_and_a_start_build_command_for_the_runner()
    {
        var created = await CreateProjectAsync(new { prompt = "Build an astro blog about cats", agent = "none" });
        var id = created.GetProperty("id").GetGuid();

        await using var db = Db();
        var message = await db.Events.SingleAsync(e => e.ProjectId == id);
        Assert.Equal(EventTypes.UserMessage, message.Type);
        Assert.Null(message.RunnerId);
        Assert.Null(message.Seq);
        Assert.Equal(new UserMessage("Build an astro blog about cats"), JsonSerializer.Deserialize<ProjectEvent>(message.Payload, LinkProtocol.JsonOptions));

        var command = await db.Commands.SingleAsync(c => c.ProjectId == id);
        Assert.Equal(CommandTypes.StartBuild, command.Type);
        Assert.Equal(CommandStatuses.Queued, command.Status);
        Assert.InRange(command.ExpiresAt - command.CreatedAt, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(61));
        var build = Assert.IsType<StartBuild>(JsonSerializer.Deserialize<RunnerCommand>(command.Payload, LinkProtocol.JsonOptions));
        Assert.Equal("astro", build.TemplateId);
        Assert.Equal(Agents.None, build.Agent);
        Assert.Equal(created.GetProperty("slug").GetString(), build.Slug);
        Assert.Equal(created.GetProperty("previewId").GetString(), build.PreviewId);

        var project = await db.Projects.SingleAsync(p => p.Id == id);
        Assert.Equal(message.Id, project.LastEventId);
    }

    [Fact]
    public async Task Queuing_a_command_notifies_the_runner_channel_on_commit()
    {
        await using var listener = new NpgsqlConnection(ConnectionString);
        await listener.OpenAsync();
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.Notification += (_, e) => received.TrySetResult(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN {SentryVibeDb.CommandsChannel}", listener)) await listen.ExecuteNonQueryAsync();

        var created = await CreateProjectAsync(new { prompt = "A tiny landing page" });

        using var cts = new CancellationTokenSource(Timeout);
        while (!received.Task.IsCompleted) await listener.WaitAsync(cts.Token);
        Assert.Equal(created.GetProperty("runnerId").GetString(), await received.Task);
    }

    [Fact]
    public async Task Slugs_are_unique_with_a_numeric_suffix()
    {
        var name = "Same Name " + Guid.NewGuid().ToString("N")[..6];
        var first = await CreateProjectAsync(new { prompt = "one", name });
        var second = await CreateProjectAsync(new { prompt = "two", name });
        var third = await CreateProjectAsync(new { prompt = "three", name });
        var slug = first.GetProperty("slug").GetString();
        Assert.Equal(slug + "-2", second.GetProperty("slug").GetString());
        Assert.Equal(slug + "-3", third.GetProperty("slug").GetString());
    }

    public static TheoryData<string, string, string> BadInputs() => new()
    {
        { "malformed JSON", "{\"prompt\": \"unterminated", "body" },
        { "empty body", "", "body" },
        { "JSON null", "null", "body" },
        { "prompt of the wrong type", "{\"prompt\": 42}", "body" },
        { "missing prompt", "{\"templateId\": \"vite-react\"}", "prompt" },
        { "empty prompt", "{\"prompt\": \"\"}", "prompt" },
        { "blank prompt", "{\"prompt\": \"   \\n \"}", "prompt" },
        { "prompt over 32 KiB", JsonSerializer.Serialize(new { prompt = new string('a', 32 * 1024 + 1) }), "prompt" },
        { "unknown template", "{\"prompt\": \"todo app\", \"templateId\": \"cobol-on-cogs\"}", "templateId" },
        { "unknown agent", "{\"prompt\": \"todo app\", \"agent\": \"skynet\"}", "agent" },
        { "template id and template URL together", "{\"prompt\": \"todo app\", \"templateId\": \"vite-react\", \"templateUrl\": \"https://github.com/example/starter.git\"}", "templateUrl" },
        { "unknown runner", "{\"prompt\": \"todo app\", \"runnerId\": \"nobody-here\"}", "runnerId" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task Bad_input_is_a_400_problem_and_writes_nothing(string because, string body, string field)
    {
        var before = await CountRowsAsync();
        using var client = Api();
        using var response = await client.PostAsync("/api/projects", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await JsonAsync(response);
        Assert.True(problem.GetProperty("errors").TryGetProperty(field, out _), $"{because}: no error for '{field}' in {problem}");
        Assert.Equal(before, await CountRowsAsync());
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413_and_writes_nothing()
    {
        var before = await CountRowsAsync();
        using var client = Api();
        var body = JsonSerializer.Serialize(new { prompt = "x", name = "y", padding = new string('p', 70 * 1024) });
        using var response = await client.PostAsync("/api/projects", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);

        // Without a Content-Length the limit holds too.
        using var chunked = new HttpRequestMessage(HttpMethod.Post, "/api/projects")
        {
            Content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(body))),
        };
        chunked.Headers.TransferEncodingChunked = true;
        using var second = await client.SendAsync(chunked);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, second.StatusCode);
        Assert.Equal(before, await CountRowsAsync());
    }

    [Theory]
    [InlineData("GET", "/api/projects/{0}")]
    [InlineData("GET", "/api/projects/not-a-guid")]
    [InlineData("GET", "/api/projects/{0}/events")]
    [InlineData("GET", "/api/projects/{0}/checkpoints")]
    [InlineData("POST", "/api/projects/{0}/dev-server/start")]
    [InlineData("POST", "/api/projects/not-a-guid/cancel")]
    [InlineData("DELETE", "/api/projects/{0}")]
    public async Task Unknown_or_malformed_project_ids_are_404_problems(string method, string path)
    {
        using var client = Api();
        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), string.Format(path, Guid.NewGuid())));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_follow_up_message_is_202_with_a_prompt_event_and_a_follow_up_command()
    {
        var id = (await CreateProjectAsync(new { prompt = "first" })).GetProperty("id").GetGuid();
        using var client = Api();
        using var response = await client.PostAsJsonAsync($"/api/projects/{id}/messages", new { prompt = "make it blue" });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var accepted = await JsonAsync(response);
        Assert.Equal(CommandTypes.FollowUp, accepted.GetProperty("type").GetString());

        await using var db = Db();
        var command = await db.Commands.SingleAsync(c => c.Id == accepted.GetProperty("commandId").GetGuid());
        Assert.Equal(new FollowUpTurn(id, "make it blue"), JsonSerializer.Deserialize<RunnerCommand>(command.Payload, LinkProtocol.JsonOptions));
        Assert.Equal(2, await db.Events.CountAsync(e => e.ProjectId == id && e.Type == EventTypes.UserMessage));

        using var empty = await client.PostAsJsonAsync($"/api/projects/{id}/messages", new { prompt = "" });
        Assert.Equal(HttpStatusCode.BadRequest, empty.StatusCode);
    }

    [Fact]
    public async Task Dev_server_start_stop_and_cancel_queue_their_commands()
    {
        var created = await CreateProjectAsync(new { prompt = "a dashboard" });
        var id = created.GetProperty("id").GetGuid();
        using var client = Api();
        foreach (var (path, type) in new[] { ("dev-server/start", CommandTypes.StartDevServer), ("dev-server/stop", CommandTypes.StopDevServer), ("cancel", CommandTypes.Cancel) })
        {
            using var response = await client.PostAsync($"/api/projects/{id}/{path}", null);
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            Assert.Equal(type, (await JsonAsync(response)).GetProperty("type").GetString());
        }
        await using var db = Db();
        var start = await db.Commands.SingleAsync(c => c.ProjectId == id && c.Type == CommandTypes.StartDevServer);
        Assert.Equal(new StartDevServer(id, created.GetProperty("previewId").GetString()), JsonSerializer.Deserialize<RunnerCommand>(start.Payload, LinkProtocol.JsonOptions));
    }

    [Fact]
    public async Task Checkpoints_come_from_the_log_and_only_known_ones_restore()
    {
        var id = (await CreateProjectAsync(new { prompt = "checkpointed" })).GetProperty("id").GetGuid();
        await AppendEventAsync(id, new CheckpointCreated("abc123", "Turn 1: scaffold", DateTimeOffset.UtcNow.AddMinutes(-1), 1));
        await AppendEventAsync(id, new CheckpointCreated("def456", "Turn 2: blue", DateTimeOffset.UtcNow, 2));

        using var client = Api();
        var list = await JsonAsync(await client.GetAsync($"/api/projects/{id}/checkpoints"));
        Assert.Equal(["def456", "abc123"], list.EnumerateArray().Select(c => c.GetProperty("id").GetString()));
        Assert.Equal("Turn 2: blue", list[0].GetProperty("message").GetString());

        using var restore = await client.PostAsync($"/api/projects/{id}/checkpoints/abc123/restore", null);
        Assert.Equal(HttpStatusCode.Accepted, restore.StatusCode);
        using var unknown = await client.PostAsync($"/api/projects/{id}/checkpoints/nope/restore", null);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        await using var db = Db();
        var command = await db.Commands.SingleAsync(c => c.ProjectId == id && c.Type == CommandTypes.RestoreCheckpoint);
        Assert.Equal(new RestoreCheckpoint(id, "abc123"), JsonSerializer.Deserialize<RunnerCommand>(command.Payload, LinkProtocol.JsonOptions));
    }

    [Fact]
    public async Task Deleting_hides_the_project_refuses_more_commands_and_ends_with_project_deleted()
    {
        var id = (await CreateProjectAsync(new { prompt = "short lived" })).GetProperty("id").GetGuid();
        using var client = Api();
        using var delete = await client.DeleteAsync($"/api/projects/{id}");
        Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        var first = (await JsonAsync(delete)).GetProperty("commandId").GetGuid();
        using var again = await client.DeleteAsync($"/api/projects/{id}");
        Assert.Equal(first, (await JsonAsync(again)).GetProperty("commandId").GetGuid());

        var list = await JsonAsync(await client.GetAsync("/api/projects"));
        Assert.DoesNotContain(list.EnumerateArray(), p => p.GetProperty("id").GetGuid() == id);
        var deleting = await JsonAsync(await client.GetAsync($"/api/projects/{id}"));
        Assert.True(deleting.TryGetProperty("deleteRequestedAt", out _));

        using var message = await client.PostAsJsonAsync($"/api/projects/{id}/messages", new { prompt = "one more thing" });
        Assert.Equal(HttpStatusCode.Conflict, message.StatusCode);
        Assert.Equal("application/problem+json", message.Content.Headers.ContentType?.MediaType);

        await AppendEventAsync(id, new ProjectDeleted());
        using var gone = await client.GetAsync($"/api/projects/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Without_a_choice_the_most_recently_seen_online_runner_builds_and_its_agents_decide_the_default()
    {
        var now = DateTimeOffset.UtcNow;
        var suffix = Guid.NewGuid().ToString("N")[..6];
        await AddRunnerAsync("old-online-" + suffix, online: true, now.AddSeconds(-5), Agents.ClaudeCode);
        await AddRunnerAsync("fresh-offline-" + suffix, online: false, now, Agents.ClaudeCode);
        await AddRunnerAsync("fresh-online-" + suffix, online: true, now.AddSeconds(-1));

        var created = await CreateProjectAsync(new { prompt = "a pomodoro timer" });
        Assert.Equal("fresh-online-" + suffix, created.GetProperty("runnerId").GetString());
        Assert.Equal(Agents.None, created.GetProperty("agent").GetString());
        Assert.Contains("Claude Code CLI not found", created.GetProperty("statusReason").GetString());

        var explicitRunner = await CreateProjectAsync(new { prompt = "a pomodoro timer", runnerId = "old-online-" + suffix });
        Assert.Equal(Agents.ClaudeCode, explicitRunner.GetProperty("agent").GetString());

        await using var db = Db();
        var id = created.GetProperty("id").GetGuid();
        Assert.True(await db.Events.AnyAsync(e => e.ProjectId == id && e.Type == EventTypes.BuildLog));
    }

    [Fact]
    public async Task An_agent_named_in_another_case_or_by_the_default_alias_is_taken_as_the_runner_would_take_it()
    {
        var named = await CreateProjectAsync(new { prompt = "a pomodoro timer", agent = "NONE" });
        Assert.Equal(Agents.None, named.GetProperty("agent").GetString());

        // "default" asks for the default, as no agent does: the runner's installed agents decide.
        var suffix = Guid.NewGuid().ToString("N")[..6];
        await AddRunnerAsync("alias-" + suffix, online: false, DateTimeOffset.UtcNow.AddDays(-30), Agents.ClaudeCode);
        var aliased = await CreateProjectAsync(new { prompt = "a pomodoro timer", agent = "default", runnerId = "alias-" + suffix });
        Assert.Equal(Agents.ClaudeCode, aliased.GetProperty("agent").GetString());
    }
}
