// Commands wait for their runner for CommandTtl; after that they expire and the project says why.
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using SentryVibe.Data;
using SentryVibe.Protocol;
using SentryVibe.Web.Extensions;

namespace SentryVibe.Web.Services;

public sealed class CommandExpiry(SentryVibeDb db, IOptions<SentryVibeOptions> options, TimeProvider time, ILogger<CommandExpiry> logger)
{
    public const int Batch = 200;

    /// <summary>
    /// Marks queued commands past their ExpiresAt as expired and records a command-failed event for their project (folded
    /// into the row like any event: start-build and follow-up fail the project). Returns how many expired.
    /// </summary>
    public async Task<int> ExpireDueAsync(CancellationToken ct)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            var now = time.GetUtcNow();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // SKIP LOCKED: a broker delivering one of these right now wins; we look again next round.
            var due = await db.Commands
                .FromSql($"""
                    SELECT * FROM commands WHERE "Status" = {CommandStatuses.Queued} AND "ExpiresAt" <= {now}
                    ORDER BY "ExpiresAt" LIMIT {Batch} FOR UPDATE SKIP LOCKED
                    """)
                .ToListAsync(ct);
            if (due.Count == 0) return 0;

            var projectIds = due.Where(c => c.ProjectId is not null).Select(c => c.ProjectId!.Value).Distinct().ToList();
            var projects = await db.Projects.Where(p => projectIds.Contains(p.Id)).ToDictionaryAsync(p => p.Id, ct);
            var written = new List<(Project Project, Event Row, CommandFailed Body)>();
            foreach (var command in due)
            {
                var reason = Reason(command);
                command.Status = CommandStatuses.Expired;
                command.Error = reason;
                command.CompletedAt = now;
                if (command.ProjectId is { } pid && projects.TryGetValue(pid, out var project))
                {
                    var body = new CommandFailed(command.Id, command.Type, reason);
                    var row = new Event
                    {
                        ProjectId = pid,
                        Type = Discriminators.Of(body),
                        Payload = Discriminators.Serialize(body),
                        Timestamp = now,
                        CreatedAt = now,
                    };
                    db.Events.Add(row);
                    written.Add((project, row, body));
                }
            }
            await db.SaveChangesAsync(ct);

            foreach (var (project, row, body) in written)
            {
                ProjectProjector.Apply(project, body, row.Id, now);
                // Nobody is left to confirm a delete: the project goes, its folder stays on that machine.
                if (body.CommandType == CommandTypes.DeleteProject) project.DeletedAt ??= now;
            }
            await db.SaveChangesAsync(ct);
            foreach (var (project, row, _) in written)
            {
                await db.Database.ExecuteSqlAsync($"SELECT pg_notify({SentryVibeDb.EventsChannel}, {EventNotification.Format(project.Id, row.Id)})", ct);
            }
            await tx.CommitAsync(ct);
            foreach (var c in due)
            {
                logger.LogWarning("Command {CommandId} ({Type}) for runner {RunnerId} expired: {Reason}", c.Id, c.Type, c.RunnerId, c.Error);
            }
            return due.Count;
        });
    }

    private string Reason(Command command)
    {
        var within = $"Runner {command.RunnerId} did not come online within {Describe(options.Value.CommandTtl)}";
        return command.Type switch
        {
            CommandTypes.StartBuild => $"{within}; the build was not started.",
            CommandTypes.FollowUp => $"{within}; the follow-up was not started.",
            CommandTypes.DeleteProject => $"{within}; the project was removed here, but its folder remains on that machine.",
            _ => $"{within}; '{command.Type}' was not carried out.",
        };
    }

    /// <summary>"1 h", "1 h 30 min", "45 s".</summary>
    public static string Describe(TimeSpan span)
    {
        var parts = new List<string>();
        if (span.Days > 0) parts.Add($"{span.Days} d");
        if (span.Hours > 0) parts.Add($"{span.Hours} h");
        if (span.Minutes > 0) parts.Add($"{span.Minutes} min");
        if (span.Seconds > 0 || parts.Count == 0) parts.Add($"{span.Seconds} s");
        return string.Join(" ", parts);
    }
}

/// <summary>Runs <see cref="CommandExpiry"/> every <see cref="SentryVibeOptions.ExpiryScanInterval"/>.</summary>
public sealed class CommandExpiryWorker(IServiceScopeFactory scopes, IOptions<SentryVibeOptions> options, ILogger<CommandExpiryWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.ExpiryScanInterval);
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var expiry = scope.ServiceProvider.GetRequiredService<CommandExpiry>();
                while (await expiry.ExpireDueAsync(stoppingToken) == CommandExpiry.Batch)
                {
                    // A full batch: there may be more.
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Command expiry scan failed; trying again in {Interval}", options.Value.ExpiryScanInterval);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }
}
