using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Npgsql;
using SentryVibe.Broker.Link;
using SentryVibe.Data;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// What a preview id points at, as the relay needs it. No port: the relay asks the runner for a channel to the
/// project's dev server, and the runner alone knows where that listens (the port stored with the project is for display).
/// </summary>
public sealed record PreviewTarget(
    Guid ProjectId,
    string PreviewId,
    string ProjectName,
    string? RunnerId,
    string DevServerStatus,
    string? Reason,
    int? ExitCode,
    IReadOnlyList<string> LastLines,
    string? RunnerStatus,
    string? RunnerBrokerId,
    string? RunnerBrokerAddress);

/// <summary>
/// Looks preview ids up in the projects table. A label that is not shaped like a preview id (<see cref="PreviewUrls.IsPreviewId"/>)
/// names no preview and costs no query. Answers, found or not, are kept for a second so a page's many requests are
/// cheap; a preview whose dev server does not serve yet is kept only a tenth of that, so the first request after it
/// comes up (a restart, docs/runner-protocol.md) reaches the app instead of a cached "starting" page, in a cache of at most <see cref="BrokerOptions.PreviewTargetCacheSize"/> entries: random hosts can neither
/// grow it nor push out real previews for long (misses go first). See docs/runner-protocol.md.
/// </summary>
public sealed class PreviewTargetStore(NpgsqlDataSource db, IOptions<BrokerOptions> options) : IDisposable
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan NotServingFor = TimeSpan.FromMilliseconds(100);
    private readonly MemoryCache _cache = new(new MemoryCacheOptions
    {
        SizeLimit = Math.Max(1, options.Value.PreviewTargetCacheSize),
        ExpirationScanFrequency = CacheFor,
    });
    private long _lookups;

    /// <summary>Entries in the cache now (each counts 1 against the size limit).</summary>
    public int CachedCount => _cache.Count;

    /// <summary>Database lookups made since start.</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    public async Task<PreviewTarget?> FindAsync(string previewId, CancellationToken cancellationToken)
    {
        if (!PreviewUrls.IsPreviewId(previewId)) return null;
        if (_cache.TryGetValue(previewId, out Cached? hit) && hit is not null) return hit.Target;

        Interlocked.Increment(ref _lookups);
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
                    dev.Status, dev.Reason, dev.ExitCode, dev.LastLines,
                    reader.IsDBNull(4) ? null : reader.GetString(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.IsDBNull(6) ? null : reader.GetString(6));
            }
        }
        _cache.Set(previewId, new Cached(target), new MemoryCacheEntryOptions
        {
            Size = 1,
            AbsoluteExpirationRelativeToNow = target is null or { DevServerStatus: DevServerStatuses.Running } ? CacheFor : NotServingFor,
            // Over the limit, compaction removes low priority first: a flood of random ids evicts its own misses.
            Priority = target is null ? CacheItemPriority.Low : CacheItemPriority.Normal,
        });
        return target;
    }

    public void Dispose() => _cache.Dispose();

    private sealed record Cached(PreviewTarget? Target);
}
