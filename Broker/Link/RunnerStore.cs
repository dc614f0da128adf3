using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>The runners table as the link sees it: online on Hello, offline on disconnect, liveness.</summary>
public sealed class RunnerStore(NpgsqlDataSource db, BrokerIdentity identity)
{
    /// <summary>
    /// Upserts the runner as online on this replica, as <paramref name="ownerId"/>'s (a row without a user becomes
    /// theirs); returns the highest committed seq and the database's clock, or null when the row is another user's (a
    /// Hello that raced the identity check): nothing is changed then.
    /// </summary>
    public async Task<(long CommittedSeq, DateTimeOffset ConnectedAt)?> MarkOnlineAsync(RunnerHello hello, Guid? ownerId, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            INSERT INTO runners ("Id", "OwnerId", "Name", "Status", "LastSeenAt", "Version", "Hostname", "BrokerId", "BrokerAddress",
                                 "Capabilities", "Agents", "PreviewProvider", "CommittedSeq", "CreatedAt")
            VALUES (@id, @owner, @name, @online, now(), @version, @hostname, @broker, @address, @capabilities::jsonb, @agents::jsonb, @preview,
                    (SELECT coalesce(max("Seq"), 0) FROM events WHERE "RunnerId" = @id), now())
            ON CONFLICT ("Id") DO UPDATE SET
                "OwnerId" = coalesce(runners."OwnerId", EXCLUDED."OwnerId"),
                "Name" = coalesce(EXCLUDED."Name", runners."Name"),
                "Status" = EXCLUDED."Status",
                "LastSeenAt" = EXCLUDED."LastSeenAt",
                "Version" = EXCLUDED."Version",
                "Hostname" = coalesce(EXCLUDED."Hostname", runners."Hostname"),
                "BrokerId" = EXCLUDED."BrokerId",
                "BrokerAddress" = EXCLUDED."BrokerAddress",
                "Capabilities" = EXCLUDED."Capabilities",
                "Agents" = EXCLUDED."Agents",
                "PreviewProvider" = EXCLUDED."PreviewProvider",
                "CommittedSeq" = EXCLUDED."CommittedSeq"
            WHERE runners."OwnerId" IS NULL OR runners."OwnerId" = EXCLUDED."OwnerId"
            RETURNING "CommittedSeq", now()
            """);
        command.Parameters.AddWithValue("id", hello.RunnerId);
        command.Parameters.Add(new NpgsqlParameter("owner", NpgsqlDbType.Uuid) { Value = (object?)ownerId ?? DBNull.Value });
        command.Parameters.AddWithValue("name", (object?)hello.Name ?? DBNull.Value);
        command.Parameters.AddWithValue("online", RunnerStatuses.Online);
        command.Parameters.AddWithValue("version", hello.Version);
        command.Parameters.AddWithValue("hostname", (object?)hello.Hostname ?? DBNull.Value);
        command.Parameters.AddWithValue("broker", identity.Id);
        command.Parameters.AddWithValue("address", identity.InternalAddress);
        command.Parameters.AddWithValue("capabilities", JsonSerializer.Serialize(hello.Capabilities ?? [], LinkProtocol.JsonOptions));
        command.Parameters.AddWithValue("agents", JsonSerializer.Serialize(hello.Agents ?? [], LinkProtocol.JsonOptions));
        command.Parameters.AddWithValue("preview", (object?)hello.PreviewProvider ?? DBNull.Value);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        return (reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1));
    }

    /// <summary>Marks the runner offline unless another replica has taken it over since.</summary>
    public async Task MarkOfflineAsync(string runnerId, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand(
            """UPDATE runners SET "Status" = @offline, "LastSeenAt" = now() WHERE "Id" = @id AND "BrokerId" = @broker""");
        command.Parameters.AddWithValue("offline", RunnerStatuses.Offline);
        command.Parameters.AddWithValue("id", runnerId);
        command.Parameters.AddWithValue("broker", identity.Id);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// Refreshes LastSeenAt (and online) of the runners this replica hears from: one statement for all of them. The ids
    /// were gathered over a heartbeat interval, so a runner whose link closed since then is in them; its teardown marked
    /// it offline with a fresh LastSeenAt, and that row is left alone (refreshing it showed a stopped runner online until
    /// the sweeper came, ~20 s). A row the sweeper marked offline has an old LastSeenAt and is brought back online.
    /// </summary>
    public async Task TouchAsync(IReadOnlyList<string> runnerIds, CancellationToken cancellationToken)
    {
        if (runnerIds.Count == 0) return;
        await using var command = db.CreateCommand("""
            UPDATE runners SET "LastSeenAt" = now(), "Status" = @online
            WHERE "Id" = ANY(@ids) AND "BrokerId" = @broker AND NOT ("Status" = @offline AND "LastSeenAt" > now() - @closedWithin)
            """);
        command.Parameters.AddWithValue("online", RunnerStatuses.Online);
        command.Parameters.AddWithValue("offline", RunnerStatuses.Offline);
        command.Parameters.AddWithValue("closedWithin", LinkProtocol.HeartbeatInterval * 2);
        command.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = runnerIds.ToArray() });
        command.Parameters.AddWithValue("broker", identity.Id);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Runners still "online" that nobody has heard from (their broker died): offline. Returns their ids.</summary>
    public async Task<IReadOnlyList<string>> SweepAsync(TimeSpan offlineAfter, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            UPDATE runners SET "Status" = @offline
            WHERE "Status" = @online AND ("LastSeenAt" IS NULL OR "LastSeenAt" < now() - @after)
            RETURNING "Id"
            """);
        command.Parameters.AddWithValue("offline", RunnerStatuses.Offline);
        command.Parameters.AddWithValue("online", RunnerStatuses.Online);
        command.Parameters.AddWithValue("after", offlineAfter);
        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) ids.Add(reader.GetString(0));
        return ids;
    }
}
