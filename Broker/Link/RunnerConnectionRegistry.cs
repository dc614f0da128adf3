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

    /// <summary>
    /// The held connections, enumerated live rather than copied: the liveness pass looks at them ten times an interval,
    /// and a copy of a thousand each time was its own allocation burst.
    /// </summary>
    public IEnumerable<RunnerConnection> All
    {
        get
        {
            foreach (var (_, connection) in _byRunner) yield return connection;
        }
    }

    public int Count => _byRunner.Count;
}
