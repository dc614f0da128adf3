using Npgsql;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>What a preview id points at, as the relay needs it.</summary>
public sealed record PreviewTarget(
    Guid ProjectId,
    string PreviewId,
    string ProjectName,
    string? RunnerId,
    string DevServerStatus,
    int? Port,
    string? Reason,
    int? ExitCode,
    IReadOnlyList<string> LastLines,
    string? RunnerStatus,
    string? RunnerBrokerId,
    string? RunnerBrokerAddress);

/// <summary>Looks preview ids up in the projects table (a cache of a second keeps a page's many requests cheap).</summary>
public sealed class PreviewTargetStore(NpgsqlDataSource db, TimeProvider clock)
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (PreviewTarget? Target, DateTimeOffset At)> _cache = new();

    public async Task<PreviewTarget?> FindAsync(string previewId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        if (_cache.TryGetValue(previewId, out var hit) && now - hit.At < CacheFor) return hit.Target;

        await using var command = db.CreateCommand("""
            SELECT p."Id", p."Name", p."RunnerId", p."DevServer"::text, r."Status", r."BrokerId", r."BrokerAddress"
            FROM projects p LEFT JOIN runners r ON r."Id" = p."RunnerId"
            WHERE p."PreviewId" = @id
            """);
        command.Parameters.AddWithValue("id", previewId);
        PreviewTarget? target = null;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            if (await reader.ReadAsync(cancellationToken))
            {
                var dev = System.Text.Json.JsonSerializer.Deserialize<DevServerState>(reader.GetString(3), LinkProtocol.JsonOptions) ?? new DevServerState();
                target = new PreviewTarget(
                    reader.GetGuid(0), previewId, reader.GetString(1),
                    reader.IsDBNull(2) ? null : reader.GetString(2),
                    dev.Status, dev.Port, dev.Reason, dev.ExitCode, dev.LastLines,
                    reader.IsDBNull(4) ? null : reader.GetString(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6));
            }
        }
        _cache[previewId] = (target, now);
        return target;
    }
}
