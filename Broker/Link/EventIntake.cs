using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Npgsql;
using NpgsqlTypes;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Appends a runner's event batch to the log idempotently on (runner, seq), folds the newly inserted ones into their
/// project rows and checkpoints in the same transaction, and wakes readers with one NOTIFY per project, delivered at commit.
/// </summary>
public sealed class EventIntake(IServiceScopeFactory scopes, BrokerIdentity identity, ILogger<EventIntake> logger)
{
    private const string InsertSql = """
        INSERT INTO events ("RunnerId", "Seq", "ProjectId", "Type", "Payload", "Timestamp", "CreatedAt")
        SELECT @runner, x.seq, x.project, x.type, x.payload::jsonb, x.ts, now()
        FROM unnest(@seqs, @projects, @types, @payloads, @timestamps) AS x(seq, project, type, payload, ts)
        ORDER BY x.seq
        ON CONFLICT ("RunnerId", "Seq") DO NOTHING
        RETURNING "Id", "Seq"
        """;

    private const string CheckpointSql = """
        INSERT INTO checkpoints ("Id", "ProjectId", "Message", "Turn", "CreatedAt")
        VALUES (@id, @project, @message, @turn, @created)
        ON CONFLICT ("ProjectId", "Id") DO UPDATE SET "Message" = EXCLUDED."Message", "Turn" = EXCLUDED."Turn", "CreatedAt" = EXCLUDED."CreatedAt"
        """;

    // One statement for every project of the batch whose new events only move the cursor.
    private const string CursorSql = """
        UPDATE projects AS p SET "LastEventId" = GREATEST(p."LastEventId", x.last), "UpdatedAt" = x.at
        FROM unnest(@ids, @lasts, @ats) AS x(id, last, at) WHERE p."Id" = x.id
        """;

    private static readonly string NotifySql = $"SELECT pg_notify('{SentryVibeDb.EventsChannel}', m) FROM unnest(@messages) AS m";

    private const string CommittedSql = """
        UPDATE runners SET "CommittedSeq" = GREATEST("CommittedSeq", @max) WHERE "Id" = @runner RETURNING "CommittedSeq"
        """;

    /// <summary>
    /// Builds the EF model and compiles the projector's query before the first runner needs them (seconds on a cold
    /// start, which a reconnecting runner would otherwise wait out after a broker restart).
    /// </summary>
    public async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<SentryVibeDb>();
        var none = new HashSet<Guid>();
        await db.Projects.Where(p => none.Contains(p.Id)).ToDictionaryAsync(p => p.Id, cancellationToken);
    }

    /// <summary>
    /// Stores the batch and returns the runner's committed-through seq once it is durable, with the events refused
    /// (never stored, but settled: the committed seq covers them so the runner drops them). A runner may report only
    /// on projects assigned to it (<c>projects.RunnerId</c>, tombstones included: it still reports a deleted project's
    /// last events); events without a project are its own. Relay preview URLs are rebuilt here from the project's
    /// preview id; other preview URLs are stored only when <see cref="PreviewUrls.IsAcceptable"/> allows them.
    /// </summary>
    public async Task<(long Committed, IReadOnlyList<RefusedEvent>? Refused)> IngestAsync(string runnerId, IReadOnlyList<RunnerEvent> events,
        string previewScheme, CancellationToken cancellationToken)
    {
        var count = events.Count;
        var seenSeqs = new HashSet<long>(count);
        foreach (var e in events)
        {
            if (e.Seq <= 0) throw new ArgumentException($"Event seq must be positive (got {e.Seq}).");
            if (e.Body is null) throw new ArgumentException($"Event {e.Seq} has no body.");
            if (!seenSeqs.Add(e.Seq)) throw new ArgumentException($"Event seq {e.Seq} appears twice in one batch.");
            Discriminators.Of(e.Body);
        }
        var maxSeq = count == 0 ? 0 : seenSeqs.Max();
        var batchProjects = events.Where(e => e.ProjectId is not null).Select(e => e.ProjectId!.Value).Distinct().Order().ToArray();
        var previewDomain = identity.PreviewDomain;

        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<SentryVibeDb>();
        var strategy = db.Database.CreateExecutionStrategy();
        var (committed, refused) = await strategy.ExecuteAsync(async ct =>
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            var connection = (NpgsqlConnection)db.Database.GetDbConnection();
            var transaction = (NpgsqlTransaction)tx.GetDbTransaction();

            // One query per batch: lock the batch's project rows that are this runner's (and only those: a runner cannot
            // hold locks on another's projects) and learn their preview ids. Web locks the same row before it appends a
            // user message, so per project ids are committed in id order and a live reader that moved past an id never
            // misses an earlier one committed later.
            var owned = new Dictionary<Guid, string>();
            if (batchProjects.Length > 0)
            {
                await using var lockRows = new NpgsqlCommand("""
                    SELECT "Id", "PreviewId" FROM projects WHERE "Id" = ANY(@ids) AND "RunnerId" = @runner ORDER BY "Id" FOR UPDATE
                    """, connection, transaction);
                lockRows.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = batchProjects });
                lockRows.Parameters.AddWithValue("runner", runnerId);
                await using var locked = await lockRows.ExecuteReaderAsync(ct);
                while (await locked.ReadAsync(ct)) owned[locked.GetGuid(0)] = locked.GetString(1);
            }

            var accepted = new List<RunnerEvent>(count);
            List<RefusedEvent>? refusals = null;
            foreach (var e in events)
            {
                var (stored, reason) = Admit(e, owned, previewDomain, previewScheme);
                if (stored is not null) accepted.Add(stored);
                else (refusals ??= []).Add(new RefusedEvent(e.Seq, reason!));
            }

            var n = accepted.Count;
            var seqs = new long[n];
            var projects = new Guid?[n];
            var types = new string[n];
            var payloads = new string[n];
            var timestamps = new DateTimeOffset[n];
            var bySeq = new Dictionary<long, RunnerEvent>(n);
            for (var i = 0; i < n; i++)
            {
                var e = accepted[i];
                bySeq[e.Seq] = e;
                seqs[i] = e.Seq;
                projects[i] = e.ProjectId;
                types[i] = Discriminators.Of(e.Body);
                payloads[i] = Discriminators.Serialize(e.Body);
                timestamps[i] = e.Timestamp.ToUniversalTime();
            }

            var inserted = new List<(long Id, long Seq)>(n);
            if (n > 0)
            {
                await using var insert = new NpgsqlCommand(InsertSql, connection, transaction);
                insert.Parameters.AddWithValue("runner", runnerId);
                insert.Parameters.Add(new NpgsqlParameter("seqs", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = seqs });
                insert.Parameters.Add(new NpgsqlParameter("projects", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = projects });
                insert.Parameters.Add(new NpgsqlParameter("types", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = types });
                insert.Parameters.Add(new NpgsqlParameter("payloads", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = payloads });
                insert.Parameters.Add(new NpgsqlParameter("timestamps", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = timestamps });
                await using var reader = await insert.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct)) inserted.Add((reader.GetInt64(0), reader.GetInt64(1)));
            }

            // Only rows inserted now are projected: a replayed batch must not apply twice. Per project: when every new
            // event only moves the cursor (ProjectProjector.MovesOnlyCursor) the row gets one set-based UPDATE with the
            // batch's last id and time; otherwise the row is loaded and every event folded in id order, as before.
            var notify = new Dictionary<Guid, long>();
            var hot = new Dictionary<Guid, (long Id, DateTimeOffset At)>();
            var cold = new HashSet<Guid>();
            var checkpoints = new List<(Guid Project, CheckpointCreated Checkpoint)>();
            inserted.Sort();
            foreach (var (id, seq) in inserted)
            {
                var e = bySeq[seq];
                if (e.ProjectId is not { } p) continue;
                notify[p] = id; // ids ascend
                if (e.Body is CheckpointCreated checkpoint) checkpoints.Add((p, checkpoint));
                if (!ProjectProjector.MovesOnlyCursor(e.Body)) cold.Add(p);
                else hot[p] = (id, e.Timestamp);
            }

            if (cold.Count > 0)
            {
                var rows = await db.Projects.Where(p => cold.Contains(p.Id)).ToDictionaryAsync(p => p.Id, ct);
                foreach (var (id, seq) in inserted)
                {
                    var e = bySeq[seq];
                    if (e.ProjectId is { } projectId && rows.TryGetValue(projectId, out var project)) ProjectProjector.Apply(project, e.Body, id, e.Timestamp);
                }
                await db.SaveChangesAsync(ct);
            }
            foreach (var p in cold) hot.Remove(p);

            // The tail of the transaction is one round trip: the committed seq, the hot projects' cursors, the
            // checkpoints and the readers' wake-up. NOTIFY inside the transaction is delivered only at its commit, so a
            // woken reader finds the rows; a rolled-back batch wakes nobody.
            using var tail = new NpgsqlBatch(connection, transaction);
            var committedCommand = new NpgsqlBatchCommand(CommittedSql);
            committedCommand.Parameters.AddWithValue("runner", runnerId);
            committedCommand.Parameters.AddWithValue("max", maxSeq);
            tail.BatchCommands.Add(committedCommand);
            if (hot.Count > 0)
            {
                var cursor = new NpgsqlBatchCommand(CursorSql);
                cursor.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = hot.Keys.ToArray() });
                cursor.Parameters.Add(new NpgsqlParameter("lasts", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = hot.Values.Select(v => v.Id).ToArray() });
                cursor.Parameters.Add(new NpgsqlParameter("ats", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz)
                {
                    Value = hot.Values.Select(v => v.At.ToUniversalTime()).ToArray(),
                });
                tail.BatchCommands.Add(cursor);
            }
            foreach (var (projectId, checkpoint) in checkpoints)
            {
                var upsert = new NpgsqlBatchCommand(CheckpointSql);
                upsert.Parameters.AddWithValue("id", checkpoint.CheckpointId);
                upsert.Parameters.AddWithValue("project", projectId);
                upsert.Parameters.AddWithValue("message", checkpoint.Message);
                upsert.Parameters.Add(new NpgsqlParameter("turn", NpgsqlDbType.Integer) { Value = (object?)checkpoint.Turn ?? DBNull.Value });
                upsert.Parameters.AddWithValue("created", checkpoint.CreatedAt.ToUniversalTime());
                tail.BatchCommands.Add(upsert);
            }
            if (notify.Count > 0)
            {
                var wake = new NpgsqlBatchCommand(NotifySql);
                wake.Parameters.Add(new NpgsqlParameter("messages", NpgsqlDbType.Array | NpgsqlDbType.Text)
                {
                    Value = notify.Select(kv => EventNotification.Format(kv.Key, kv.Value)).ToArray(),
                });
                tail.BatchCommands.Add(wake);
            }
            long committedSeq;
            await using (var results = await tail.ExecuteReaderAsync(ct))
            {
                committedSeq = await results.ReadAsync(ct) ? results.GetInt64(0) : maxSeq;
                while (await results.NextResultAsync(ct)) { } // surfaces an error of any later command
            }

            await tx.CommitAsync(ct);
            return (committedSeq, (IReadOnlyList<RefusedEvent>?)refusals);
        }, cancellationToken);

        if (refused is { Count: > 0 })
        {
            logger.LogWarning("Refused {Count} of {Total} events from runner {Runner}, e.g. seq {Seq}: {Reason}",
                refused.Count, count, runnerId, refused[0].Seq, refused[0].Reason);
        }

        return (committed, refused);
    }

    /// <summary>The event as it may be stored, or null and why not.</summary>
    private static (RunnerEvent? Stored, string? Reason) Admit(RunnerEvent e, Dictionary<Guid, string> owned, string previewDomain, string previewScheme)
    {
        string? previewId = null;
        if (e.ProjectId is { } projectId && !owned.TryGetValue(projectId, out previewId))
        {
            return (null, $"Project {projectId} is not assigned to this runner.");
        }
        if (e.Body is not PortDetected port) return (e, null);
        if (previewId is null) return (null, "A port-detected event needs the project it is about.");
        if (port.Provider == PreviewUrls.RelayProvider)
        {
            // Never the runner's word for it: the relay address is the server's, made from the project's preview id.
            return (e with { Body = port with { PreviewUrl = PreviewUrls.ForRelay(previewId, previewDomain, previewScheme) } }, null);
        }
        return PreviewUrls.IsAcceptable(port.PreviewUrl, previewDomain)
            ? (e, null)
            : (null, "The preview URL is not an http(s) address of loopback, a Cloudflare quick tunnel or this broker's preview domain.");
    }
}
