using System.Collections.Concurrent;

namespace SentryVibe.Broker.Link;

/// <summary>The runners whose sockets this replica holds. A newer connection of a runner replaces the older one.</summary>
public sealed class RunnerConnectionRegistry
{
    private readonly ConcurrentDictionary<string, RunnerConnection> _byRunner = new(StringComparer.Ordinal);

    /// <summary>Makes <paramref name="connection"/> the runner's current one and returns the one it replaced.</summary>
    public RunnerConnection? Register(string runnerId, RunnerConnection connection)
    {
        RunnerConnection? previous = null;
        _byRunner.AddOrUpdate(runnerId, connection, (_, old) => { previous = old; return connection; });
        return previous == connection ? null : previous;
    }

    /// <summary>Removes the runner only when <paramref name="connection"/> is still its current one.</summary>
    public bool Remove(string runnerId, RunnerConnection connection) =>
        _byRunner.TryRemove(new KeyValuePair<string, RunnerConnection>(runnerId, connection));

    public RunnerConnection? Get(string runnerId) => _byRunner.TryGetValue(runnerId, out var c) ? c : null;

    public IReadOnlyCollection<RunnerConnection> All => [.. _byRunner.Values];

    public int Count => _byRunner.Count;
}
