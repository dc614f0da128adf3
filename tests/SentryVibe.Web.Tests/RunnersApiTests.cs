using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using SentryVibe.Protocol;
using SentryVibe.Testing;

namespace SentryVibe.Web.Tests;

public sealed class RunnersApiTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    [Fact]
    public async Task A_created_runner_token_is_shown_once_and_stored_only_as_its_hash()
    {
        using var client = Api();
        using var response = await client.PostAsJsonAsync("/api/runners/tokens", new { name = "my laptop" });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = await JsonAsync(response);
        var token = created.GetProperty("token").GetString()!;
        Assert.Matches("^svr_[A-Za-z0-9_-]{43}$", token);
        Assert.Equal(token[..12], created.GetProperty("prefix").GetString());

        await using var db = Db();
        var row = await db.RunnerTokens.SingleAsync(t => t.Id == created.GetProperty("id").GetGuid());
        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(token)), row.Hash);

        await using var conn = new NpgsqlConnection(ConnectionString);
        await conn.OpenAsync();
        await using var dump = new NpgsqlCommand("SELECT row_to_json(t)::text FROM runner_tokens t", conn);
        await using var reader = await dump.ExecuteReaderAsync();
        while (await reader.ReadAsync()) Assert.DoesNotContain(token, reader.GetString(0));

        var list = await JsonAsync(await client.GetAsync("/api/runners/tokens"));
        var listed = Assert.Single(list.EnumerateArray(), t => t.GetProperty("id").GetGuid() == row.Id);
        Assert.False(listed.TryGetProperty("token", out _));
        Assert.False(listed.TryGetProperty("hash", out _));
        Assert.DoesNotContain(token, list.GetRawText());
    }

    [Fact]
    public async Task A_revoked_token_is_marked_and_unknown_ones_are_404()
    {
        using var client = Api();
        var created = await JsonAsync(await client.PostAsJsonAsync("/api/runners/tokens", new { name = "ci" }));
        var id = created.GetProperty("id").GetGuid();

        using var revoke = await client.DeleteAsync($"/api/runners/tokens/{id}");
        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        await using var db = Db();
        Assert.NotNull((await db.RunnerTokens.SingleAsync(t => t.Id == id)).RevokedAt);

        using var unknown = await client.DeleteAsync($"/api/runners/tokens/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task A_created_token_is_bound_to_a_runner_id_made_from_its_name_unless_one_is_given()
    {
        var name = "Laptop " + Guid.NewGuid().ToString("N")[..6];
        var slug = RunnerIds.FromName(name);
        using var client = Api();

        var first = await JsonAsync(await client.PostAsJsonAsync("/api/runners/tokens", new { name }));
        var second = await JsonAsync(await client.PostAsJsonAsync("/api/runners/tokens", new { name }));
        var rotated = await JsonAsync(await client.PostAsJsonAsync("/api/runners/tokens", new { name = "replacement", runnerId = slug }));

        Assert.Equal(slug, first.GetProperty("runnerId").GetString());
        Assert.Equal(slug + "-2", second.GetProperty("runnerId").GetString());
        Assert.Equal(slug, rotated.GetProperty("runnerId").GetString());
        await using var db = Db();
        Assert.Equal(slug, (await db.RunnerTokens.SingleAsync(t => t.Id == first.GetProperty("id").GetGuid())).RunnerId);
        var listed = (await JsonAsync(await client.GetAsync("/api/runners/tokens"))).EnumerateArray()
            .Single(t => t.GetProperty("id").GetGuid() == second.GetProperty("id").GetGuid());
        Assert.Equal(slug + "-2", listed.GetProperty("runnerId").GetString());
    }

    [Fact]
    public async Task A_name_made_id_never_takes_the_id_of_a_runner_that_already_linked()
    {
        var id = "box-" + Guid.NewGuid().ToString("N")[..6];
        await AddRunnerAsync(id, online: true, DateTimeOffset.UtcNow);
        using var client = Api();

        var created = await JsonAsync(await client.PostAsJsonAsync("/api/runners/tokens", new { name = id }));

        Assert.Equal(id + "-2", created.GetProperty("runnerId").GetString());
    }

    [Theory]
    [InlineData("../etc")]
    [InlineData("-rf")]
    [InlineData("two words")]
    [InlineData("")]
    [InlineData("laptöp")]
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")]
    public async Task A_bad_runner_id_is_a_400_problem_and_makes_no_token(string runnerId)
    {
        var before = await CountAsync("runner_tokens");
        using var client = Api();

        using var response = await client.PostAsJsonAsync("/api/runners/tokens", new { name = "box", runnerId });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = (await JsonAsync(response)).GetProperty("errors");
        Assert.Equal(RunnerIds.Rule, errors.GetProperty("runnerId")[0].GetString());
        Assert.Equal(before, await CountAsync("runner_tokens"));
    }

    [Fact]
    public async Task Revoking_a_token_tells_the_brokers_at_once()
    {
        using var client = Api();
        var created = await JsonAsync(await client.PostAsJsonAsync("/api/runners/tokens", new { name = "to-revoke" }));
        var id = created.GetProperty("id").GetGuid();
        await using var listener = new NpgsqlConnection(ConnectionString);
        await listener.OpenAsync();
        var heard = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.Notification += (_, e) => heard.TrySetResult(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN {SentryVibe.Data.SentryVibeDb.RevokedTokensChannel}", listener))
        {
            await listen.ExecuteNonQueryAsync();
        }
        var waiting = listener.WaitAsync(TimeSpan.FromSeconds(10));

        using var revoke = await client.DeleteAsync($"/api/runners/tokens/{id}");
        await waiting;

        Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        Assert.Equal(id.ToString(), await heard.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_token_needs_a_name()
    {
        var before = await CountAsync("runner_tokens");
        using var client = Api();
        using var response = await client.PostAsJsonAsync("/api/runners/tokens", new { name = " " });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.True((await JsonAsync(response)).GetProperty("errors").TryGetProperty("name", out _));
        Assert.Equal(before, await CountAsync("runner_tokens"));
    }

    [Fact]
    public async Task Runners_are_online_only_when_recently_seen()
    {
        var now = DateTimeOffset.UtcNow;
        await AddRunnerAsync("fresh", online: true, now, Agents.ClaudeCode);
        await AddRunnerAsync("stale", online: true, now - LinkProtocol.OfflineAfter - TimeSpan.FromMinutes(1));
        await AddRunnerAsync("gone", online: false, now);

        using var client = Api();
        var runners = (await JsonAsync(await client.GetAsync("/api/runners"))).EnumerateArray()
            .ToDictionary(r => r.GetProperty("id").GetString()!, r => r.GetProperty("status").GetString());
        Assert.Equal("online", runners["fresh"]);
        Assert.Equal("offline", runners["stale"]);
        Assert.Equal("offline", runners["gone"]);
    }

    [Fact]
    public async Task Templates_come_from_the_catalog()
    {
        using var client = Api();
        var templates = await JsonAsync(await client.GetAsync("/api/templates"));
        Assert.Equal(TemplateCatalog.BuiltIn.Select(t => t.Id), templates.EnumerateArray().Select(t => t.GetProperty("id").GetString()));
        Assert.All(templates.EnumerateArray(), t =>
        {
            Assert.False(string.IsNullOrEmpty(t.GetProperty("name").GetString()));
            Assert.False(string.IsNullOrEmpty(t.GetProperty("framework").GetString()));
            Assert.True(t.TryGetProperty("description", out _));
        });
    }
}
