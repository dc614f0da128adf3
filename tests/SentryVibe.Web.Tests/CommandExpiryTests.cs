using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Tests;

/// <summary>No runner ever registers in this class's database.</summary>
public sealed class CommandExpiryTests(PostgresFixture postgres, WebAppFixture fixture) : WebTest(postgres, fixture)
{
    private async Task<int> ExpireAsync()
    {
        await using var scope = App.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<CommandExpiry>().ExpireDueAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Without_any_runner_the_build_waits_for_the_local_runner_and_says_so()
    {
        var created = await CreateProjectAsync(new { prompt = "waiting game" });
        Assert.Equal("local", created.GetProperty("runnerId").GetString());
        Assert.Equal(Agents.ClaudeCode, created.GetProperty("agent").GetString());
        Assert.Contains("No runner has connected yet", created.GetProperty("statusReason").GetString());
    }

    [Fact]
    public async Task An_expired_build_command_is_marked_expired_and_fails_the_project_with_the_reason()
    {
        var id = (await CreateProjectAsync(new { prompt = "nobody builds this" })).GetProperty("id").GetGuid();
        var keep = (await CreateProjectAsync(new { prompt = "still within its hour" })).GetProperty("id").GetGuid();
        await using (var db = Db())
        {
            await db.Commands.Where(c => c.ProjectId == id)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }

        Assert.Equal(1, await ExpireAsync());

        await using (var db = Db())
        {
            var command = await db.Commands.SingleAsync(c => c.ProjectId == id);
            Assert.Equal(CommandStatuses.Expired, command.Status);
            Assert.Equal("Runner local did not come online within 1 h; the build was not started.", command.Error);
            var project = await db.Projects.SingleAsync(p => p.Id == id);
            Assert.Equal(ProjectStatuses.Failed, project.Status);
            Assert.Equal(command.Error, project.StatusReason);
            Assert.True(await db.Events.AnyAsync(e => e.ProjectId == id && e.Type == EventTypes.CommandFailed));

            Assert.Equal(CommandStatuses.Queued, (await db.Commands.SingleAsync(c => c.ProjectId == keep)).Status);
            Assert.Equal(ProjectStatuses.Pending, (await db.Projects.SingleAsync(p => p.Id == keep)).Status);
        }

        // Expired once is expired for good.
        Assert.Equal(0, await ExpireAsync());
    }

    [Fact]
    public async Task An_expired_delete_removes_the_project_here()
    {
        var id = (await CreateProjectAsync(new { prompt = "delete me offline" })).GetProperty("id").GetGuid();
        using var client = Api();
        await client.DeleteAsync($"/api/projects/{id}");
        await using (var db = Db())
        {
            await db.Commands.Where(c => c.ProjectId == id)
                .ExecuteUpdateAsync(s => s.SetProperty(c => c.ExpiresAt, DateTimeOffset.UtcNow.AddSeconds(-1)));
        }
        Assert.Equal(2, await ExpireAsync());
        using var response = await client.GetAsync($"/api/projects/{id}");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public void Durations_read_like_people_write_them()
    {
        Assert.Equal("1 h", CommandExpiry.Describe(TimeSpan.FromHours(1)));
        Assert.Equal("1 h 30 min", CommandExpiry.Describe(TimeSpan.FromMinutes(90)));
        Assert.Equal("45 s", CommandExpiry.Describe(TimeSpan.FromSeconds(45)));
    }
}
