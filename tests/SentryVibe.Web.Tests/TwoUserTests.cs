// Two users in one running app, each playing the attacker against the other through the API, the event stream and the
// pages: another user's project, runner or token answers exactly like one that does not exist (docs/security.md).
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using SentryVibe.Web.Accounts;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Tests;

public sealed class TwoUserTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    /// <summary>Every project route, with {0} for the project id; each must treat another user's project as missing.</summary>
    public static TheoryData<string, string, string?> ProjectRoutes => new()
    {
        { "GET", "/api/projects/{0}", null },
        { "GET", "/api/projects/{0}/events", null },
        { "GET", "/api/projects/{0}/checkpoints", null },
        { "POST", "/api/projects/{0}/messages", """{"prompt":"make it red"}""" },
        { "POST", "/api/projects/{0}/dev-server/start", null },
        { "POST", "/api/projects/{0}/dev-server/stop", null },
        { "POST", "/api/projects/{0}/cancel", null },
        { "POST", "/api/projects/{0}/checkpoints/cp-1/restore", null },
        { "DELETE", "/api/projects/{0}", null },
    };

    [Theory]
    [MemberData(nameof(ProjectRoutes))]
    public async Task Neither_user_can_reach_the_others_project_and_each_attempt_is_the_404_of_a_missing_one(string method, string path, string? body)
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceProject = await CreateOwnProjectAsync(alice, "Alice's secret garden planner");
        var bobProject = await CreateOwnProjectAsync(bob, "Bob's private budget tracker");

        foreach (var (attacker, victim, project) in new[] { (bob, alice, aliceProject), (alice, bob, bobProject) })
        {
            var before = await SnapshotAsync(project);
            var missing = Guid.NewGuid();

            var theirs = await SendAsync(attacker, method, string.Format(path, project), body);
            var none = await SendAsync(attacker, method, string.Format(path, missing), body);

            Assert.Equal(HttpStatusCode.NotFound, theirs.Status);
            Assert.Equal(none.Status, theirs.Status);
            Assert.Equal("application/problem+json", theirs.ContentType);
            Assert.Equal(none.ContentType, theirs.ContentType);
            Assert.Equal(Normalize(none.Body, missing), Normalize(theirs.Body, project));
            Assert.DoesNotContain("Alice's", theirs.Body);
            Assert.DoesNotContain("Bob's", theirs.Body);
            Assert.Equal(before, await SnapshotAsync(project));

            // The victim still can (the 404 is about who asks, not a broken project).
            var own = await SendAsync(victim, "GET", $"/api/projects/{project}", null);
            Assert.Equal(HttpStatusCode.OK, own.Status);
        }
    }

    [Fact]
    public async Task Only_the_owner_sees_the_people_list_and_it_counts_projects_without_showing_them()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        await CreateOwnProjectAsync(alice, "Alice's secret garden planner");

        // To a member the route does not exist: the same answer as an unknown path.
        var theirs = await SendAsync(bob, "GET", "/api/account/users", null);
        var none = await SendAsync(bob, "GET", "/api/account/no-such-route", null);
        Assert.Equal(HttpStatusCode.NotFound, theirs.Status);
        Assert.Equal((none.Status, none.ContentType, Normalize(none.Body, "no-id")), (theirs.Status, theirs.ContentType, Normalize(theirs.Body, "no-id")));

        using var owner = Api();
        var people = await owner.GetFromJsonAsync<JsonElement>("/api/account/users");
        var list = people.EnumerateArray().ToList();
        Assert.True(list[0].GetProperty("isOwner").GetBoolean(), "the owner comes first");
        var aliceRow = Assert.Single(list, p => p.GetProperty("id").GetGuid() == alice.Id);
        Assert.Equal(1, aliceRow.GetProperty("projects").GetInt32());
        Assert.Equal(1, aliceRow.GetProperty("runners").GetInt32());
        Assert.Contains(list, p => p.GetProperty("id").GetGuid() == bob.Id);
        Assert.DoesNotContain("garden", people.GetRawText());
    }

    [Fact]
    public async Task Neither_user_can_stream_the_others_project_events()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceProject = await CreateOwnProjectAsync(alice, "Alice streams");
        await AppendEventAsync(aliceProject, new AgentMessage("Alice's private plan"), runnerId: alice.Runner);

        using var bobClient = Client(bob);
        var theirs = await OpenStreamAsync(bobClient, aliceProject);
        var missing = Guid.NewGuid();
        var none = await OpenStreamAsync(bobClient, missing);
        Assert.Equal(HttpStatusCode.NotFound, theirs.Status);
        Assert.Equal("application/problem+json", theirs.ContentType);
        Assert.Equal(Normalize(none.Body, missing), Normalize(theirs.Body, aliceProject));
        Assert.DoesNotContain("private plan", theirs.Body);

        // Last-Event-ID does not open a side door either.
        var resumed = await OpenStreamAsync(bobClient, aliceProject, lastEventId: 0);
        Assert.Equal(HttpStatusCode.NotFound, resumed.Status);

        using var aliceClient = Client(alice);
        await using var stream = await SseStream.OpenAsync(aliceClient, $"/api/projects/{aliceProject}/events", lastEventId: null);
        Assert.Equal(EventTypes.UserMessage, (await stream.NextAsync()).Type);
        SseMessage message;
        do message = await stream.NextAsync(); while (message.Type != EventTypes.AgentMessage);
        Assert.Contains("private plan", message.Data);
    }

    [Fact]
    public async Task The_lists_show_only_your_own_projects_runners_and_runner_tokens()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceProject = await CreateOwnProjectAsync(alice, "Alice list");
        var bobProject = await CreateOwnProjectAsync(bob, "Bob list");
        var aliceToken = await CreateRunnerTokenAsync(alice, "alice-box");
        var bobToken = await CreateRunnerTokenAsync(bob, "bob-box");

        foreach (var (me, mine, theirs, myToken, theirToken, myRunner, theirRunner) in new[]
                 {
                     (alice, aliceProject, bobProject, aliceToken, bobToken, alice.Runner, bob.Runner),
                     (bob, bobProject, aliceProject, bobToken, aliceToken, bob.Runner, alice.Runner),
                 })
        {
            using var client = Client(me);
            var projects = await client.GetFromJsonAsync<JsonElement>("/api/projects");
            Assert.Equal([mine], projects.EnumerateArray().Select(p => p.GetProperty("id").GetGuid()));

            var runners = await client.GetFromJsonAsync<JsonElement>("/api/runners");
            Assert.Equal([myRunner], runners.EnumerateArray().Select(r => r.GetProperty("id").GetString()));

            var tokens = await client.GetFromJsonAsync<JsonElement>("/api/runners/tokens");
            var ids = tokens.EnumerateArray().Select(t => t.GetProperty("id").GetGuid()).ToList();
            Assert.Equal([myToken], ids);
            Assert.DoesNotContain(theirToken, ids);
            Assert.DoesNotContain(theirRunner, await client.GetStringAsync("/api/runners"));
        }

        // The API token is the owner's: it sees neither user's things.
        using var owner = Api();
        var ownerProjects = await owner.GetFromJsonAsync<JsonElement>("/api/projects");
        Assert.DoesNotContain(ownerProjects.EnumerateArray(), p => p.GetProperty("id").GetGuid() == aliceProject || p.GetProperty("id").GetGuid() == bobProject);
    }

    [Fact]
    public async Task Neither_user_can_revoke_the_others_runner_token_and_the_attempt_is_the_404_of_a_missing_one()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceToken = await CreateRunnerTokenAsync(alice, "alice-revoke");

        var missing = Guid.NewGuid();
        var theirs = await SendAsync(bob, "DELETE", $"/api/runners/tokens/{aliceToken}", null);
        var none = await SendAsync(bob, "DELETE", $"/api/runners/tokens/{missing}", null);

        Assert.Equal(HttpStatusCode.NotFound, theirs.Status);
        Assert.Equal(Normalize(none.Body, missing), Normalize(theirs.Body, aliceToken));
        await using (var db = Db())
        {
            Assert.Null((await db.RunnerTokens.SingleAsync(t => t.Id == aliceToken)).RevokedAt);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(alice, "DELETE", $"/api/runners/tokens/{aliceToken}", null)).Status);
    }

    [Fact]
    public async Task A_project_can_be_assigned_only_to_your_own_runners()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var before = await CountRowsAsync();

        var theirs = await SendAsync(bob, "POST", "/api/projects", JsonSerializer.Serialize(new { prompt = "use alice's machine", runnerId = alice.Runner }));
        var none = await SendAsync(bob, "POST", "/api/projects", JsonSerializer.Serialize(new { prompt = "use a ghost machine", runnerId = "ghost-runner" }));

        Assert.Equal(HttpStatusCode.BadRequest, theirs.Status);
        Assert.Equal(Normalize(none.Body, "ghost-runner"), Normalize(theirs.Body, alice.Runner));
        Assert.Contains(bob.Runner, theirs.Body); // "Your runners: …" names only Bob's
        Assert.Equal(before, await CountRowsAsync());

        // Without naming one, Bob's project goes to Bob's runner even while only Alice's is online.
        await using (var db = Db())
        {
            await db.Runners.Where(r => r.Id == bob.Runner).ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, RunnerStatuses.Offline));
        }
        var project = await CreateOwnProjectAsync(bob, "Bob's own machine", runnerId: null);
        await using (var db = Db())
        {
            var row = await db.Projects.SingleAsync(p => p.Id == project);
            Assert.Equal(bob.Runner, row.RunnerId);
            Assert.Equal(bob.Id, row.OwnerId);
            Assert.Equal(bob.Runner, (await db.Commands.SingleAsync(c => c.ProjectId == project)).RunnerId);
        }
    }

    [Fact]
    public async Task A_user_with_no_runner_is_told_to_add_one_and_never_gets_another_users_runner()
    {
        await NewUserAsync("alice");
        var carol = await NewUserAsync("carol", withRunner: false);
        var before = await CountRowsAsync();

        var response = await SendAsync(carol, "POST", "/api/projects", JsonSerializer.Serialize(new { prompt = "a todo app" }));

        Assert.Equal(HttpStatusCode.BadRequest, response.Status);
        var errors = JsonDocument.Parse(response.Body).RootElement.GetProperty("errors");
        Assert.Equal(ProjectService.NoRunnerYet, errors.GetProperty("runnerId")[0].GetString());
        Assert.Equal(before, await CountRowsAsync());
        Assert.Contains("You have no runner yet", await PageAsync(carol, "/")); // not "the build waits for one"
    }

    [Fact]
    public async Task A_runner_id_another_user_has_cannot_be_named_for_a_runner_token()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceTokenId = await CreateRunnerTokenAsync(alice, "alice-next", runnerId: "alice-next");
        var tokensBefore = await CountAsync("runner_tokens");

        // Alice's linked runner, the id Alice's token is bound to (no runner row yet), and the owner's local runner id.
        foreach (var taken in new[] { alice.Runner, "alice-next", "local" })
        {
            var response = await SendAsync(bob, "POST", "/api/runners/tokens", JsonSerializer.Serialize(new { name = "mine now", runnerId = taken }));
            Assert.Equal(HttpStatusCode.BadRequest, response.Status);
            var errors = JsonDocument.Parse(response.Body).RootElement.GetProperty("errors");
            Assert.Equal(RunnerDirectory.RunnerIdTaken, errors.GetProperty("runnerId")[0].GetString());
        }
        Assert.Equal(tokensBefore, await CountAsync("runner_tokens"));

        // A token for Bob's own runner (rotation) is fine, and it is Bob's.
        var rotated = await CreateRunnerTokenAsync(bob, "bob again", runnerId: bob.Runner);
        await using var db = Db();
        Assert.Equal(bob.Id, (await db.RunnerTokens.SingleAsync(t => t.Id == rotated)).OwnerId);
        Assert.Equal(alice.Id, (await db.RunnerTokens.SingleAsync(t => t.Id == aliceTokenId)).OwnerId);
    }

    [Fact]
    public async Task A_revoked_personal_token_is_refused_at_once()
    {
        var bob = await NewUserAsync("bob");
        using var client = Client(bob);
        using var created = await client.PostAsJsonAsync("/api/account/tokens", new { name = "VS Code" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var made = await JsonAsync(created);
        var second = bob with { Token = made.GetProperty("token").GetString()! };
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(second, "GET", "/api/projects", null)).Status);

        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(bob, "DELETE", $"/api/account/tokens/{made.GetProperty("id").GetGuid()}", null)).Status);

        var refused = await SendAsync(second, "GET", "/api/projects", null);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(bob, "GET", "/api/projects", null)).Status);
    }

    [Fact]
    public async Task Neither_user_can_see_or_revoke_the_others_personal_token_and_the_attempt_is_the_404_of_a_missing_one()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        using var client = Client(alice);
        using var created = await client.PostAsJsonAsync("/api/account/tokens", new { name = "Alice's laptop" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var made = await JsonAsync(created);
        var id = made.GetProperty("id").GetGuid();
        var aliceSecond = alice with { Token = made.GetProperty("token").GetString()! };

        var theirs = await SendAsync(bob, "DELETE", $"/api/account/tokens/{id}", null);
        var missing = Guid.NewGuid();
        var none = await SendAsync(bob, "DELETE", $"/api/account/tokens/{missing}", null);
        Assert.Equal(HttpStatusCode.NotFound, theirs.Status);
        Assert.Equal(Normalize(none.Body, missing), Normalize(theirs.Body, id));
        Assert.DoesNotContain("Alice's laptop", (await SendAsync(bob, "GET", "/api/account/tokens", null)).Body);

        // Alice's token was not touched.
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(aliceSecond, "GET", "/api/projects", null)).Status);
    }

    [Fact]
    public async Task The_pages_show_only_your_own_projects_and_runners()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceProject = await CreateOwnProjectAsync(alice, "Alice's hidden herbarium");
        await AppendEventAsync(aliceProject, new AgentMessage("Alice's confidential notes"), runnerId: alice.Runner);
        await CreateOwnProjectAsync(bob, "Bob's visible velodrome");
        await CreateRunnerTokenAsync(alice, "alice-token-name");

        // Pages take the bearer too (the default scheme picks it when the header is there): prerendered as Bob.
        var projectPage = await PageAsync(bob, $"/projects/{aliceProject}");
        Assert.Contains("This project is gone", projectPage);
        Assert.DoesNotContain("herbarium", projectPage);
        Assert.DoesNotContain("confidential", projectPage);
        Assert.Contains("velodrome", projectPage); // the sidebar: Bob's own

        var home = await PageAsync(bob, "/");
        Assert.Contains("velodrome", home);
        Assert.DoesNotContain("herbarium", home);
        Assert.DoesNotContain(alice.Runner, home); // the runner picker

        var runners = await PageAsync(bob, "/runners");
        Assert.Contains(bob.Runner, runners);
        Assert.DoesNotContain(alice.Runner, runners);
        Assert.DoesNotContain("alice-token-name", runners);

        Assert.Contains("herbarium", await PageAsync(alice, $"/projects/{aliceProject}"));
    }

    [Fact]
    public async Task A_project_page_feed_reads_nothing_of_another_users_project()
    {
        var (alice, bob) = (await NewUserAsync("alice"), await NewUserAsync("bob"));
        var aliceProject = await CreateOwnProjectAsync(alice, "Alice feed");
        await AppendEventAsync(aliceProject, new AgentMessage("for Alice only"), runnerId: alice.Runner);

        await using var scope = App.Services.CreateAsyncScope();
        var sessions = scope.ServiceProvider.GetRequiredService<SentryVibe.Web.Ui.ProjectSessions>();
        var bobs = await sessions.ReadSnapshotAsync(bob.Id, aliceProject, CancellationToken.None);
        Assert.Null(bobs.Project);
        Assert.Empty(bobs.Events);
        Assert.Empty(bobs.Checkpoints);

        var alices = await sessions.ReadSnapshotAsync(alice.Id, aliceProject, CancellationToken.None);
        Assert.NotNull(alices.Project);
        Assert.Contains(alices.Events, e => e.Type == EventTypes.AgentMessage);
        Assert.NotEmpty(alices.Checkpoints);
    }

    // ---- helpers ----

    public sealed record TestUser(Guid Id, string Token, string Runner);

    private sealed record Answer(HttpStatusCode Status, string? ContentType, string Body);

    /// <summary>A user made the way sign-up makes one, a personal token of theirs, and (unless not wanted) a runner of theirs online.</summary>
    private async Task<TestUser> NewUserAsync(string name, bool withRunner = true)
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        await using var scope = App.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        var user = new User
        {
            Id = Guid.CreateVersion7(),
            UserName = $"{name}-{suffix}@example.test",
            Email = $"{name}-{suffix}@example.test",
            DisplayName = name,
            CreatedAt = DateTimeOffset.UtcNow,
        };
        var result = await users.CreateAsync(user, "correct horse battery");
        Assert.True(result.Succeeded, string.Join(" ", result.Errors.Select(e => e.Description)));
        var token = await scope.ServiceProvider.GetRequiredService<PersonalTokens>().CreateAsync(user.Id, new CreatePersonalTokenRequest("tests"), CancellationToken.None);
        var runner = $"{name}-runner-{suffix}";
        if (withRunner) await AddRunnerAsync(runner, online: true, DateTimeOffset.UtcNow, user.Id, Agents.ClaudeCode);
        return new TestUser(user.Id, ((ServiceResult<CreatedPersonalToken>.Ok)token).Value.Token, runner);
    }

    private HttpClient Client(TestUser user)
    {
        var client = App.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", user.Token);
        return client;
    }

    private async Task<Guid> CreateOwnProjectAsync(TestUser user, string name, string? runnerId = "")
    {
        var answer = await SendAsync(user, "POST", "/api/projects",
            JsonSerializer.Serialize(new { prompt = name + ": build it", name, runnerId = runnerId == "" ? user.Runner : runnerId }));
        Assert.Equal(HttpStatusCode.Created, answer.Status);
        var id = JsonDocument.Parse(answer.Body).RootElement.GetProperty("id").GetGuid();
        await AppendEventAsync(id, new CheckpointCreated("cp-1", "first", DateTimeOffset.UtcNow), runnerId: user.Runner);
        return id;
    }

    private async Task<Guid> CreateRunnerTokenAsync(TestUser user, string name, string? runnerId = null)
    {
        var answer = await SendAsync(user, "POST", "/api/runners/tokens", JsonSerializer.Serialize(new { name, runnerId }));
        Assert.Equal(HttpStatusCode.Created, answer.Status);
        return JsonDocument.Parse(answer.Body).RootElement.GetProperty("id").GetGuid();
    }

    private async Task<Answer> SendAsync(TestUser user, string method, string path, string? body)
    {
        using var client = Client(user);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using var response = await client.SendAsync(request);
        return new Answer(response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync());
    }

    private static async Task<Answer> OpenStreamAsync(HttpClient client, Guid project, long? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/projects/{project}/events");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is { } last) request.Headers.Add("Last-Event-ID", last.ToString());
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        // An open stream never ends: a leak shows as its status, not as a test that hangs.
        var body = response.IsSuccessStatusCode ? "" : await response.Content.ReadAsStringAsync();
        return new Answer(response.StatusCode, response.Content.Headers.ContentType?.MediaType, body);
    }

    private async Task<string> PageAsync(TestUser user, string path)
    {
        using var client = Client(user);
        using var response = await client.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>A problem body with the asked-for id and the per-request trace id taken out: what must not differ.</summary>
    private static string Normalize(string body, Guid id) => Normalize(body, id.ToString());

    private static string Normalize(string body, string id)
    {
        var json = JsonDocument.Parse(body).RootElement;
        var fields = json.EnumerateObject()
            .Where(p => p.Name != "traceId")
            .Select(p => $"{p.Name}={p.Value.ToString().Replace(id, "<id>", StringComparison.OrdinalIgnoreCase)}");
        return string.Join("\n", fields);
    }

    /// <summary>Everything an attacker might change about a project: its row, its commands and its events.</summary>
    private async Task<string> SnapshotAsync(Guid project)
    {
        await using var db = Db();
        var row = await db.Projects.AsNoTracking().SingleAsync(p => p.Id == project);
        var commands = await db.Commands.CountAsync(c => c.ProjectId == project);
        var events = await db.Events.CountAsync(e => e.ProjectId == project);
        return $"{row.Status}|{row.DeleteRequestedAt}|{row.DeletedAt}|{row.LastEventId}|{row.UpdatedAt:O}|{commands}|{events}";
    }
}
