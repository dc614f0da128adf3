// The single-user upgrade (docs/accounts.md): a database from before accounts, with projects, runners, runner tokens and
// events, is opened by this Web; every project is still there, now the owner's, and reachable with the API token.
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using SentryVibe.Data;
using SentryVibe.Testing;
using SentryVibe.Web.Accounts;

namespace SentryVibe.Web.Tests;

[Collection(PostgresCollection.Name)]
public sealed class SingleUserUpgradeTests(PostgresFixture postgres)
{
    /// <summary>The last migration before accounts: the schema a single-user install has.</summary>
    private const string BeforeAccounts = "20261204134846_RunnerTokenIdentity";

    [Fact]
    public async Task A_single_user_database_keeps_every_project_runner_and_token_and_they_become_the_owners()
    {
        var connection = await postgres.CreateDatabaseAsync();
        await using (var db = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(connection).Options))
        {
            await db.GetService<IMigrator>().MigrateAsync(BeforeAccounts);
        }
        var projects = new[] { Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid() };
        var tokenId = Guid.NewGuid();
        await SeedAsync(connection, projects, tokenId);

        await using var app = new SentryVibeWebFactory(new Dictionary<string, string?> { ["ConnectionStrings:sentryvibe"] = connection });
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", SentryVibeWebFactory.ApiToken);

        var listed = await client.GetFromJsonAsync<JsonElement>("/api/projects");
        Assert.Equal(projects.Order(), listed.EnumerateArray().Select(p => p.GetProperty("id").GetGuid()).Order());
        foreach (var id in projects)
        {
            using var one = await client.GetAsync($"/api/projects/{id}");
            Assert.Equal(HttpStatusCode.OK, one.StatusCode);
            var events = await client.GetFromJsonAsync<JsonElement>($"/api/projects/{id}/events");
            Assert.Equal("kept", events.EnumerateArray().Single().GetProperty("data").GetProperty("text").GetString());
        }
        Assert.Equal(["laptop"], (await client.GetFromJsonAsync<JsonElement>("/api/runners")).EnumerateArray().Select(r => r.GetProperty("id").GetString()));
        Assert.Equal([tokenId], (await client.GetFromJsonAsync<JsonElement>("/api/runners/tokens")).EnumerateArray().Select(t => t.GetProperty("id").GetGuid()));

        // A follow-up still goes to the project's runner.
        using var followUp = await client.PostAsJsonAsync($"/api/projects/{projects[0]}/messages", new { prompt = "still mine?" });
        Assert.Equal(HttpStatusCode.Accepted, followUp.StatusCode);

        var owner = app.Services.GetRequiredService<OwnerAccount>().Id;
        await using var check = new SentryVibeDb(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(connection).Options);
        Assert.True(await check.Users.AnyAsync(u => u.Id == owner && u.IsOwner));
        Assert.All(await check.Projects.ToListAsync(), p => Assert.Equal(owner, p.OwnerId));
        Assert.All(await check.Runners.ToListAsync(), r => Assert.Equal(owner, r.OwnerId));
        Assert.All(await check.RunnerTokens.ToListAsync(), t => Assert.Equal(owner, t.OwnerId));
        Assert.Equal(3, await check.Events.CountAsync(e => e.Type == "agent-message"));
    }

    /// <summary>Rows as a single-user install wrote them, in that schema's columns (no OwnerId anywhere).</summary>
    private static async Task SeedAsync(string connectionString, Guid[] projects, Guid tokenId)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await Execute(connection, """
            INSERT INTO runners ("Id", "Name", "Status", "LastSeenAt", "Version", "Capabilities", "Agents", "CommittedSeq", "CreatedAt")
            VALUES ('laptop', 'laptop', 'offline', now(), '1.0.0', '[]', '["claude-code"]', 3, now())
            """);
        await Execute(connection, """
            INSERT INTO runner_tokens ("Id", "Name", "Hash", "Prefix", "CreatedAt", "RunnerId") VALUES (@id, 'laptop', @hash, 'svr_abcdefgh', now(), 'laptop')
            """, ("id", tokenId), ("hash", SHA256.HashData(Encoding.UTF8.GetBytes("svr_before-accounts"))));
        var seq = 0;
        foreach (var id in projects)
        {
            seq++;
            await Execute(connection, """
                INSERT INTO projects ("Id", "Slug", "Name", "Prompt", "Status", "TemplateId", "Agent", "Todos", "DevServer", "PreviewId", "CostUsd", "Turns", "CreatedAt", "UpdatedAt", "LastEventId", "RunnerId")
                VALUES (@id, @slug, 'Old project', 'made before accounts', 'ready', 'vite-react', 'none', '[]', '{}', @preview, 0, 1, now(), now(), 0, 'laptop')
                """, ("id", id), ("slug", "old-" + id.ToString("N")[..8]), ("preview", Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16))));
            await Execute(connection, """
                INSERT INTO events ("RunnerId", "Seq", "ProjectId", "Type", "Payload", "Timestamp", "CreatedAt")
                VALUES ('laptop', @seq, @id, 'agent-message', '{"type":"agent-message","text":"kept"}', now(), now())
                """, ("seq", (long)seq), ("id", id));
        }
    }

    private static async Task Execute(NpgsqlConnection connection, string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync();
    }
}
