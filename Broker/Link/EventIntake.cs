using System.Text.Json;
using System.Text.Json.Serialization;
using Npgsql;
using NpgsqlTypes;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Appends a runner's event batch to the log idempotently on (runner, seq), folds the newly inserted ones into their
/// project rows and checkpoints in the same transaction, and wakes readers with one NOTIFY per project, delivered at commit.
/// </summary>
public sealed class EventIntake(NpgsqlDataSource db, BrokerIdentity identity, ILogger<EventIntake> logger)
{
    /// <summary>Which of the batch's projects (<c>@ids</c>) a runner may report on: those assigned to it, locked.</summary>
    private const string LockSql = """
        SELECT "Id", "PreviewId" FROM projects WHERE "Id" = ANY(@ids) AND "RunnerId" = @runner ORDER BY "Id" FOR UPDATE
        """;

    // Locks the owned rows and stores the events of no project or of an owned one, in one statement (one snapshot, so the
    // rows it stores events of are exactly the rows it locked). It returns an owned row as (null, null, id, preview id),
    // a newly stored event that is folded one by one (@folded) as (id, seq, null, null), and each project's newest
    // newly stored event as (id, seq, project, null), its highest id and seq being one event's since ids are drawn in
    // seq order. Not a row for every event: that cost the broker a sixth of its CPU per event (bench events, 2.7
    // against 3.2 µs). A replayed event is not stored again.
    private const string StoreSql = """
        WITH owned AS (
        """ + LockSql + """
        ), stored AS (
            INSERT INTO events ("RunnerId", "Seq", "ProjectId", "Type", "Payload", "Timestamp", "CreatedAt")
            SELECT @runner, x.seq, x.project, x.type, x.payload::jsonb, x.ts, now()
            FROM unnest(@seqs, @projects, @types, @payloads, @timestamps) AS x(seq, project, type, payload, ts)
            WHERE x.project IS NULL OR x.project IN (SELECT "Id" FROM owned)
            ORDER BY x.seq
            ON CONFLICT ("RunnerId", "Seq") DO NOTHING
            RETURNING "Id", "Seq", "ProjectId"
        )
        SELECT NULL::bigint, NULL::bigint, "Id", "PreviewId" FROM owned
        UNION ALL
        SELECT "Id", "Seq", NULL::uuid, NULL::text FROM stored WHERE "Seq" = ANY(@folded)
        UNION ALL
        SELECT max("Id"), max("Seq"), "ProjectId", NULL::text FROM stored WHERE "ProjectId" IS NOT NULL GROUP BY "ProjectId"
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
    /// What needs no database: checks the batch and serializes its events, so that this runs while the runner's batch
    /// before it is still in the database (<see cref="BrokerService"/> calls it before the batch waits its turn).
    /// </summary>
    /// <exception cref="ArgumentException">The batch is malformed (a seq not positive or twice, an event without a body).</exception>
    public static PreparedBatch Prepare(IReadOnlyList<RunnerEvent> events)
    {
        var n = events.Count;
        var seenSeqs = new HashSet<long>(n);
        var seqs = new long[n];
        var projects = new Guid?[n];
        var types = new string[n];
        var payloads = new string[n];
        var timestamps = new DateTimeOffset[n];
        var ownedFirst = false;
        var folded = new List<long>();
        for (var i = 0; i < n; i++)
        {
            var e = events[i] ?? throw new ArgumentException("A batch holds an event that is null.");
            if (e.Seq <= 0) throw new ArgumentException($"Event seq must be positive (got {e.Seq}).");
            if (e.Body is null) throw new ArgumentException($"Event {e.Seq} has no body.");
            if (!seenSeqs.Add(e.Seq)) throw new ArgumentException($"Event seq {e.Seq} appears twice in one batch.");
            seqs[i] = e.Seq;
            projects[i] = e.ProjectId;
            types[i] = Discriminators.Of(e.Body);
            payloads[i] = Discriminators.Serialize(e.Body);
            timestamps[i] = e.Timestamp.ToUniversalTime();
            ownedFirst |= e.Body is PortDetected;
            if (e.ProjectId is not null && IsFoldedOneByOne(e.Body)) folded.Add(e.Seq);
        }
        var batchProjects = events.Where(e => e.ProjectId is not null).Select(e => e.ProjectId!.Value).Distinct().Order().ToArray();
        return new PreparedBatch(new Rows(events, seqs, projects, types, payloads, timestamps), n == 0 ? 0 : seqs.Max(), batchProjects, ownedFirst,
            [.. folded]);
    }

    /// <summary>
    /// Stores the batch and returns the runner's committed-through seq once it is durable, with the events refused
    /// (never stored, but settled: the committed seq covers them so the runner drops them). A runner may report only
    /// on projects assigned to it (<c>projects.RunnerId</c>, tombstones included: it still reports a deleted project's
    /// last events); events without a project are its own. Relay preview URLs are rebuilt here from the project's
    /// preview id; other preview URLs are stored only when <see cref="PreviewUrls.IsAcceptable"/> allows them.
    /// </summary>
    public async Task<(long Committed, IReadOnlyList<RefusedEvent>? Refused)> IngestAsync(string runnerId, PreparedBatch batch,
        string previewScheme, CancellationToken cancellationToken)
    {
        var count = batch.Rows.Count;
        var maxSeq = batch.MaxSeq;
        var batchProjects = batch.Projects;
        var previewDomain = identity.PreviewDomain;

        await using var connection = await db.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // Lock the batch's project rows that are this runner's (and only those: a runner cannot hold locks on
        // another's projects) and learn their preview ids. Web locks the same row before it appends a user message, so
        // per project ids are committed in id order and a live reader that moved past an id never misses an earlier
        // one committed later. StoreSql locks and inserts in one statement, one snapshot: it stores only events of the
        // rows it locked (or of no project). Only a batch with a PortDetected, which needs its project's preview id to
        // be admitted, learns the owned rows in a round trip of its own first.
        var owned = new Dictionary<Guid, string>();
        if (batch.NeedsOwnedFirst && batchProjects.Length > 0)
        {
            await using var lockRows = new NpgsqlCommand(LockSql, connection, transaction);
            Owned(lockRows.Parameters, batchProjects, runnerId);
            await using var locked = await lockRows.ExecuteReaderAsync(cancellationToken);
            while (await locked.ReadAsync(cancellationToken)) owned[locked.GetGuid(0)] = locked.GetString(1);
        }
        var (rows, refusals) = batch.NeedsOwnedFirst ? Admit(batch.Rows, owned, previewDomain, previewScheme) : (batch.Rows, (List<RefusedEvent>?)null);

        var folded = new List<(long Id, long Seq)>();
        var newest = new Dictionary<Guid, (long Id, long Seq)>();
        if (rows.Count > 0)
        {
            await using var store = new NpgsqlCommand(StoreSql, connection, transaction);
            Owned(store.Parameters, batchProjects, runnerId);
            store.Parameters.Add(new NpgsqlParameter("seqs", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = rows.Seqs });
            store.Parameters.Add(new NpgsqlParameter("projects", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = rows.Projects });
            store.Parameters.Add(new NpgsqlParameter("types", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Types });
            store.Parameters.Add(new NpgsqlParameter("payloads", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Payloads });
            store.Parameters.Add(new NpgsqlParameter("timestamps", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = rows.Timestamps });
            store.Parameters.Add(new NpgsqlParameter("folded", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = batch.FoldedSeqs });
            await using var reader = await store.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                if (reader.IsDBNull(0)) owned[reader.GetGuid(2)] = reader.GetString(3);
                else if (reader.IsDBNull(2)) folded.Add((reader.GetInt64(0), reader.GetInt64(1)));
                else newest[reader.GetGuid(2)] = (reader.GetInt64(0), reader.GetInt64(1));
            }
        }
        // StoreSql left out the events of projects not this runner's: the same rule, now with the owned rows known,
        // says which and why (without a port event nothing else refuses, so the stored rows are the batch's).
        if (!batch.NeedsOwnedFirst) refusals = Admit(batch.Rows, owned, previewDomain, previewScheme).Refused;
        // The few events needed by themselves: those folded one by one and each project's newest.
        var needed = new HashSet<long>(folded.Count + newest.Count);
        foreach (var (_, seq) in folded) needed.Add(seq);
        foreach (var (_, seq) in newest.Values) needed.Add(seq);
        var bySeq = new Dictionary<long, RunnerEvent>(needed.Count);
        foreach (var e in rows.Events) if (needed.Contains(e.Seq)) bySeq[e.Seq] = e;

        // Only rows inserted now are projected: a replayed batch must not apply twice. Per project: when every new
        // event only moves the cursor (ProjectProjector.MovesOnlyCursor) the row gets one set-based UPDATE with the
        // id and time of its newest event; otherwise the row is loaded and its events that change it are folded in id
        // order, then its newest, which is all the others would have done (they only move the cursor).
        var notify = newest.ToDictionary(kv => kv.Key, kv => kv.Value.Id);
        var hot = newest.ToDictionary(kv => kv.Key, kv => (kv.Value.Id, At: bySeq[kv.Value.Seq].Timestamp));
        var cold = new HashSet<Guid>();
        var checkpoints = new List<(Guid Project, CheckpointCreated Checkpoint)>();
        folded.Sort();
        foreach (var (_, seq) in folded)
        {
            var e = bySeq[seq];
            if (e.Body is CheckpointCreated checkpoint) checkpoints.Add((e.ProjectId!.Value, checkpoint));
            if (!ProjectProjector.MovesOnlyCursor(e.Body)) cold.Add(e.ProjectId!.Value);
        }

        // The cold rows are already locked (StoreSql, or LockSql before it): they are read, folded into and stored
        // (in the tail below) without another writer in between.
        var loaded = new Dictionary<Guid, Project>();
        if (cold.Count > 0)
        {
            await using var load = new NpgsqlCommand(ProjectRows.SelectSql, connection, transaction);
            load.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = cold.ToArray() });
            await using (var rowsRead = await load.ExecuteReaderAsync(cancellationToken))
            {
                while (await rowsRead.ReadAsync(cancellationToken)) loaded.Add(rowsRead.GetGuid(0), ProjectRows.Read(rowsRead));
            }
            foreach (var (id, seq) in folded)
            {
                var e = bySeq[seq];
                if (loaded.TryGetValue(e.ProjectId!.Value, out var project)) ProjectProjector.Apply(project, e.Body, id, e.Timestamp);
            }
            foreach (var (projectId, project) in loaded)
            {
                var (id, seq) = newest[projectId];
                var e = bySeq[seq];
                if (project.LastEventId < id && ProjectProjector.MovesOnlyCursor(e.Body)) ProjectProjector.Apply(project, e.Body, id, e.Timestamp);
            }
        }
        foreach (var p in cold) hot.Remove(p);

        // The tail of the transaction is one round trip: the committed seq, the cold rows, the hot projects' cursors,
        // the checkpoints, the readers' wake-up and the COMMIT itself. NOTIFY inside the transaction is delivered only at
        // its commit, so a woken reader finds the rows; a rolled-back batch wakes nobody. After an error Postgres skips
        // the rest of the round trip, COMMIT included, and reading the results throws it; Npgsql learns from the
        // server that the transaction ended, so disposing it does not roll back what was committed.
        using var tail = new NpgsqlBatch(connection, transaction);
        var committedCommand = new NpgsqlBatchCommand(CommittedSql);
        committedCommand.Parameters.AddWithValue("runner", runnerId);
        committedCommand.Parameters.AddWithValue("max", maxSeq);
        tail.BatchCommands.Add(committedCommand);
        foreach (var project in loaded.Values) tail.BatchCommands.Add(ProjectRows.Update(project));
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
        tail.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
        long committedSeq;
        await using (var results = await tail.ExecuteReaderAsync(cancellationToken))
        {
            committedSeq = await results.ReadAsync(cancellationToken) ? results.GetInt64(0) : maxSeq;
            while (await results.NextResultAsync(cancellationToken)) { } // surfaces an error of any later command, or of the COMMIT
        }
        if (refusals is { Count: > 0 })
        {
            logger.LogWarning("Refused {Count} of {Total} events from runner {Runner}, e.g. seq {Seq}: {Reason}",
                refusals.Count, count, runnerId, refusals[0].Seq, refusals[0].Reason);
        }
        return (committedSeq, refusals);
    }

    private static void Owned(NpgsqlParameterCollection parameters, Guid[] projects, string runnerId)
    {
        parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = projects });
        parameters.AddWithValue("runner", runnerId);
    }

    /// <summary>
    /// The rows that may be stored (a relay PortDetected's URL rebuilt) and the events refused, with why; the batch's own
    /// rows when every event is stored as it came.
    /// </summary>
    private static (Rows Rows, List<RefusedEvent>? Refused) Admit(Rows batch, Dictionary<Guid, string> owned, string previewDomain, string previewScheme)
    {
        var keep = new List<int>(batch.Count);
        var events = new List<RunnerEvent>(batch.Count);
        List<RefusedEvent>? refused = null;
        for (var i = 0; i < batch.Count; i++)
        {
            var (stored, reason) = Admit(batch.Events[i], owned, previewDomain, previewScheme);
            if (stored is null)
            {
                (refused ??= []).Add(new RefusedEvent(batch.Events[i].Seq, reason!));
                continue;
            }
            keep.Add(i);
            events.Add(stored);
        }
        if (refused is null && events.Select((e, k) => ReferenceEquals(e, batch.Events[k])).All(same => same)) return (batch, null);
        var rows = new Rows(events, [.. keep.Select(i => batch.Seqs[i])], [.. keep.Select(i => batch.Projects[i])], [.. keep.Select(i => batch.Types[i])],
            [.. keep.Select((i, k) => ReferenceEquals(events[k], batch.Events[i]) ? batch.Payloads[i] : Discriminators.Serialize(events[k].Body))],
            [.. keep.Select(i => batch.Timestamps[i])]);
        return (rows, refused);
    }

    /// <summary>The event as it may be stored, or null and why not.</summary>
    private static (RunnerEvent? Stored, string? Reason) Admit(RunnerEvent e, Dictionary<Guid, string> owned, string previewDomain, string previewScheme)
    {
        string? previewId = null;
        if (e.ProjectId is { } projectId && !owned.TryGetValue(projectId, out previewId)) return (null, $"Project {projectId} is not assigned to this runner.");
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

    /// <summary>Events and their columns as the INSERT takes them, index-aligned.</summary>
    public sealed record Rows(IReadOnlyList<RunnerEvent> Events, long[] Seqs, Guid?[] Projects, string[] Types, string[] Payloads,
        DateTimeOffset[] Timestamps)
    {
        public int Count => Seqs.Length;
    }

    /// <summary>
    /// A batch checked and serialized (<see cref="Prepare"/>): its rows, its highest seq, its distinct projects in id
    /// order, whether an event needs its project's preview id before it can be admitted, and the seqs of its events
    /// folded one by one.
    /// </summary>
    public sealed record PreparedBatch(Rows Rows, long MaxSeq, Guid[] Projects, bool NeedsOwnedFirst, long[] FoldedSeqs);

    /// <summary>
    /// An event the intake needs by itself once stored: one that changes its project's row (folded into it) or a
    /// checkpoint (upserted). The rest only move their project's cursor to its newest event.
    /// </summary>
    private static bool IsFoldedOneByOne(ProjectEvent body) => !ProjectProjector.MovesOnlyCursor(body) || body is CheckpointCreated;
}
