using Npgsql;
using NpgsqlTypes;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>A command row claimed for delivery.</summary>
public sealed record ClaimedCommand(Guid Id, string Payload, string? TraceParent, DateTimeOffset CreatedAt, int Attempts);

/// <summary>
/// The command queue's state machine as the broker drives it: queued → delivered → acked | failed, then completed | failed.
/// Claims are conditional updates over <c>FOR UPDATE SKIP LOCKED</c>, so two replicas never claim one row at once.
/// </summary>
public sealed class CommandStore(NpgsqlDataSource db)
{
    /// <summary>
    /// Claims the oldest deliverable command of the runner: queued, or delivered by an earlier connection that never got
    /// an ack (<paramref name="connectedAt"/> is the current connection's start on the database clock). Expired rows are skipped.
    /// The claim commits without waiting for its WAL flush (<c>synchronous_commit = off</c> for this transaction only): a
    /// claim lost in a database crash leaves the row deliverable again, and the runner's journal answers the repeat as a
    /// duplicate, so waiting for the disk would only add a flush to every command's way to its runner
    /// (docs/runner-protocol.md, "Exactly once").
    /// </summary>
    public async Task<ClaimedCommand?> ClaimNextAsync(string runnerId, string brokerId, DateTimeOffset connectedAt, CancellationToken cancellationToken)
    {
        await using var connection = await db.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection);
        // One implicit transaction for the whole batch: the setting holds for the claim's commit and no longer.
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('synchronous_commit', 'off', true)"));
        var command = new NpgsqlBatchCommand("""
            UPDATE commands AS c
            SET "Status" = @delivered, "DeliveredBy" = @broker, "DeliveredAt" = now(), "Attempts" = c."Attempts" + 1
            WHERE c."Id" = (
                SELECT "Id" FROM commands
                WHERE "RunnerId" = @runner
                  AND "ExpiresAt" > now()
                  AND ("Status" = @queued OR ("Status" = @delivered AND ("DeliveredAt" IS NULL OR "DeliveredAt" < @since)))
                ORDER BY "CreatedAt", "Id"
                LIMIT 1
                FOR UPDATE SKIP LOCKED)
            RETURNING c."Id", c."Payload"::text, c."TraceParent", c."CreatedAt", c."Attempts"
            """);
        command.Parameters.AddWithValue("delivered", CommandStatuses.Delivered);
        command.Parameters.AddWithValue("queued", CommandStatuses.Queued);
        command.Parameters.AddWithValue("broker", brokerId);
        command.Parameters.AddWithValue("runner", runnerId);
        command.Parameters.AddWithValue("since", connectedAt);
        batch.BatchCommands.Add(command);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        await reader.NextResultAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken)) return null;
        return new ClaimedCommand(
            reader.GetGuid(0),
            reader.GetString(1),
            reader.IsDBNull(2) ? null : reader.GetString(2),
            reader.GetFieldValue<DateTimeOffset>(3),
            reader.GetInt32(4));
    }

    /// <summary>Records the runner's answer to a delivery (a duplicate counts as acked).</summary>
    public async Task MarkAckedAsync(Guid id, CommandAck ack, CancellationToken cancellationToken)
    {
        var accepted = ack.Accepted || ack.Duplicate;
        await using var command = db.CreateCommand("""
            UPDATE commands SET "Status" = @status, "AckedAt" = now(), "Error" = coalesce(@error, "Error"),
                                "CompletedAt" = CASE WHEN @status = @failed THEN now() ELSE "CompletedAt" END
            WHERE "Id" = @id AND "Status" = @delivered
            """);
        command.Parameters.AddWithValue("status", accepted ? CommandStatuses.Acked : CommandStatuses.Failed);
        command.Parameters.AddWithValue("failed", CommandStatuses.Failed);
        command.Parameters.AddWithValue("delivered", CommandStatuses.Delivered);
        command.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = accepted ? DBNull.Value : (object?)ack.Error ?? "Refused by the runner." });
        command.Parameters.AddWithValue("id", id);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task MarkFailedAsync(Guid id, string error, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            UPDATE commands SET "Status" = @failed, "Error" = @error, "CompletedAt" = now()
            WHERE "Id" = @id AND "Status" IN (@queued, @delivered)
            """);
        command.Parameters.AddWithValue("failed", CommandStatuses.Failed);
        command.Parameters.AddWithValue("queued", CommandStatuses.Queued);
        command.Parameters.AddWithValue("delivered", CommandStatuses.Delivered);
        command.Parameters.AddWithValue("error", error);
        command.Parameters.AddWithValue("id", id);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The runner's final word on a command it accepted; a runner can only settle its own commands.</summary>
    public async Task<bool> CompleteAsync(string runnerId, CommandResult result, CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            UPDATE commands SET "Status" = @status, "Error" = @error, "CompletedAt" = now(),
                                "AckedAt" = coalesce("AckedAt", now())
            WHERE "Id" = @id AND "RunnerId" = @runner AND "Status" IN (@delivered, @acked)
            """);
        command.Parameters.AddWithValue("status", result.Succeeded ? CommandStatuses.Completed : CommandStatuses.Failed);
        command.Parameters.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)result.Error ?? DBNull.Value });
        command.Parameters.AddWithValue("id", result.CommandId);
        command.Parameters.AddWithValue("runner", runnerId);
        command.Parameters.AddWithValue("delivered", CommandStatuses.Delivered);
        command.Parameters.AddWithValue("acked", CommandStatuses.Acked);
        return await command.ExecuteNonQueryAsync(cancellationToken) > 0;
    }

    /// <summary>Of the given runners, those with something to deliver (the safety net for missed notifications).</summary>
    public async Task<IReadOnlyList<string>> RunnersWithPendingAsync(IReadOnlyList<string> runnerIds, CancellationToken cancellationToken)
    {
        if (runnerIds.Count == 0) return [];
        await using var command = db.CreateCommand("""
            SELECT DISTINCT "RunnerId" FROM commands
            WHERE "RunnerId" = ANY(@ids) AND "Status" IN (@queued, @delivered) AND "ExpiresAt" > now()
            """);
        command.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = runnerIds.ToArray() });
        command.Parameters.AddWithValue("queued", CommandStatuses.Queued);
        command.Parameters.AddWithValue("delivered", CommandStatuses.Delivered);
        var ids = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) ids.Add(reader.GetString(0));
        return ids;
    }
}
