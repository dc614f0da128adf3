using SentryVibe.Protocol;

namespace SentryVibe.Runner.Build;

/// <summary>The projects with a build under way, as the events this runner publishes tell it.</summary>
public sealed class ActiveBuilds
{
    private readonly Dictionary<Guid, DateTimeOffset> _active = [];
    private readonly Lock _lock = new();

    public IReadOnlyList<Guid> Current { get { lock (_lock) return [.. _active.Keys]; } }

    public IReadOnlyDictionary<Guid, DateTimeOffset> Snapshot() { lock (_lock) return new Dictionary<Guid, DateTimeOffset>(_active); }

    public void Observe(RunnerEvent e)
    {
        if (e.ProjectId is not { } project) return;
        lock (_lock)
        {
            switch (e.Body)
            {
                case BuildStarted:
                    _active[project] = e.Timestamp;
                    break;
                case BuildCompleted or BuildFailed or BuildCancelled or ProjectDeleted:
                    _active.Remove(project);
                    break;
            }
        }
    }
}
