// Stands in for the Broker: keeps a runner row online and appends runner events exactly as event intake does
// (insert with runner id and sequence, fold into the project row, NOTIFY 'projectId:eventId', one transaction).
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.UI.Tests;

public sealed class FakeBroker(string connectionString) : IAsyncDisposable
{
    public const string RunnerId = "test-runner";
    private readonly CancellationTokenSource _stop = new();
    private Task _heartbeat = Task.CompletedTask;
    private long _seq;

    private SentryVibeDb Db() => new(new DbContextOptionsBuilder<SentryVibeDb>().UseNpgsql(connectionString).Options);

    public async Task StartAsync()
    {
        await using (var db = Db())
        {
            var now = DateTimeOffset.UtcNow;
            // The owner's runners, as the broker records a runner linked with the owner's token (docs/accounts.md).
            var owner = await db.Users.Where(u => u.IsOwner).Select(u => (Guid?)u.Id).FirstOrDefaultAsync();
            db.Runners.Add(new Runner
            {
                Id = RunnerId,
                OwnerId = owner,
                Name = "test-runner",
                Status = RunnerStatuses.Online,
                LastSeenAt = now,
                Version = "0.1.0-test",
                Hostname = "ci-box",
                Agents = [Agents.ClaudeCode, Agents.None],
                PreviewProvider = "relay",
                CreatedAt = now,
            });
            db.Runners.Add(new Runner
            {
                Id = "old-laptop",
                OwnerId = owner,
                Name = "old-laptop",
                Status = RunnerStatuses.Offline,
                LastSeenAt = now.AddHours(-3),
                Version = "0.0.9",
                CreatedAt = now.AddDays(-2),
            });
            await db.SaveChangesAsync();
        }
        _heartbeat = Task.Run(() => HeartbeatAsync(_stop.Token));
    }

    // The real broker refreshes last_seen on every heartbeat (LinkProtocol.HeartbeatInterval).
    private async Task HeartbeatAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(LinkProtocol.HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                await using var db = Db();
                await db.Runners.Where(r => r.Id == RunnerId)
                    .ExecuteUpdateAsync(s => s.SetProperty(r => r.LastSeenAt, DateTimeOffset.UtcNow), ct);
            }
        }
        catch (OperationCanceledException) { }
    }

    public async Task<long> AppendAsync(Guid projectId, ProjectEvent body)
    {
        await using var db = Db();
        await using var tx = await db.Database.BeginTransactionAsync();
        var now = DateTimeOffset.UtcNow;
        var row = new Event
        {
            RunnerId = RunnerId,
            Seq = Interlocked.Increment(ref _seq),
            ProjectId = projectId,
            Type = Discriminators.Of(body),
            Payload = JsonSerializer.Serialize(body, LinkProtocol.JsonOptions),
            Timestamp = now,
            CreatedAt = now,
        };
        db.Events.Add(row);
        await db.SaveChangesAsync();
        var project = await db.Projects.FirstAsync(p => p.Id == projectId);
        ProjectProjector.Apply(project, body, row.Id, now);
        await db.SaveChangesAsync();
        await db.Database.ExecuteSqlAsync($"SELECT pg_notify({SentryVibeDb.EventsChannel}, {projectId + ":" + row.Id})");
        await tx.CommitAsync();
        return row.Id;
    }

    public async Task AppendAsync(Guid projectId, params ProjectEvent[] events)
    {
        foreach (var e in events) await AppendAsync(projectId, e);
    }

    /// <summary>The commands Web queued for this project, oldest first.</summary>
    public async Task<List<Command>> CommandsAsync(Guid projectId)
    {
        await using var db = Db();
        return await db.Commands.AsNoTracking().Where(c => c.ProjectId == projectId).OrderBy(c => c.CreatedAt).ToListAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _heartbeat;
        _stop.Dispose();
    }
}
