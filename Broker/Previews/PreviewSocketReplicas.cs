using System.Diagnostics;
using Npgsql;
using SentryVibe.Broker.Link;
using SentryVibe.Data;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Where a preview socket dialled at the wrong replica belongs (docs/architecture.md, "Several brokers behind one
/// hostname"): a runner dials its link's hostname, and a load balancer may hand the dial to any replica, while only the
/// one that issued the ticket (or spare key) holds it. The ticket's tag names that replica; this finds its internal
/// address among the replicas holding online runners. The list is read at most once a second, whatever the number of
/// dials with unknown tags, so made-up tickets cannot turn into database load.
/// </summary>
public sealed class PreviewSocketReplicas(NpgsqlDataSource db, BrokerIdentity identity)
{
    private static readonly TimeSpan RefreshAfter = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private IReadOnlyDictionary<string, string> _byTag = new Dictionary<string, string>();
    private long _readAt; // a Stopwatch timestamp; 0: never read
    private long _reads;

    /// <summary>Times the list was read from the database since start (metric <c>sentryvibe.preview.replica_reads</c>).</summary>
    public long Reads => Interlocked.Read(ref _reads);

    /// <summary>The internal address of the other replica whose tag <paramref name="value"/> starts with, or null.</summary>
    public async Task<string?> AddressForAsync(string value, CancellationToken cancellationToken)
    {
        if (value.Length < PreviewTickets.TagLength) return null;
        var tag = value[..PreviewTickets.TagLength];
        if (_byTag.TryGetValue(tag, out var address)) return address;
        if (!Stale()) return null;
        await _refresh.WaitAsync(cancellationToken);
        try
        {
            if (Stale())
            {
                Interlocked.Increment(ref _reads);
                _byTag = await ReadAsync(cancellationToken);
                Interlocked.Exchange(ref _readAt, Stopwatch.GetTimestamp());
            }
        }
        finally
        {
            _refresh.Release();
        }
        return _byTag.GetValueOrDefault(tag);
    }

    private bool Stale() => Interlocked.Read(ref _readAt) is var at && (at == 0 || Stopwatch.GetElapsedTime(at) >= RefreshAfter);

    private async Task<IReadOnlyDictionary<string, string>> ReadAsync(CancellationToken cancellationToken)
    {
        await using var command = db.CreateCommand("""
            SELECT DISTINCT "BrokerId", "BrokerAddress" FROM runners
            WHERE "Status" = @online AND "BrokerId" IS NOT NULL AND "BrokerId" <> @self AND "BrokerAddress" IS NOT NULL AND "BrokerAddress" <> ''
            """);
        command.Parameters.AddWithValue("online", RunnerStatuses.Online);
        command.Parameters.AddWithValue("self", identity.Id);
        var byTag = new Dictionary<string, string>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken)) byTag[PreviewTickets.TagOf(reader.GetString(0))] = reader.GetString(1);
        return byTag;
    }
}
