using Microsoft.Extensions.Options;
using SentryVibe.Runner.Core;
using SentryVibe.Runner.Workspace;

namespace SentryVibe.Runner.Build;

/// <summary>
/// The one answer to "is a build under way here?": the scheduler begins and ends builds here, the heartbeat and the
/// status file read it. Each build is also noted on disk (a mark beside the project's state file) so that a runner
/// killed in the middle of one can say so when it starts again instead of leaving the project "building" for ever.
/// </summary>
public sealed class ActiveBuilds
{
    private readonly Dictionary<Guid, DateTimeOffset> _active = [];
    private readonly Lock _lock = new();
    private readonly ProjectMarks _marks;

    public ActiveBuilds(IOptions<WorkspaceOptions> options)
        : this(Path.Join(options.Value.ResolvedHome, "projects"))
    {
    }

    public ActiveBuilds(string directory)
    {
        _marks = new ProjectMarks(directory, "building");
    }

    /// <summary>The projects with a build queued or running now.</summary>
    public IReadOnlyList<Guid> Current { get { lock (_lock) return [.. _active.Keys]; } }

    public bool IsActive(Guid projectId) { lock (_lock) return _active.ContainsKey(projectId); }

    public void Begin(Guid projectId)
    {
        lock (_lock)
        {
            _active.TryAdd(projectId, DateTimeOffset.UtcNow);
            _marks.Set(projectId);
        }
    }

    /// <summary>Whatever the build published last (completed, failed, cancelled) is the truth from now on.</summary>
    public void End(Guid projectId)
    {
        lock (_lock)
        {
            _active.Remove(projectId);
            _marks.Clear(projectId);
        }
    }

    /// <summary>Builds noted on disk that this runner is not running: an earlier run's, left when it was killed.</summary>
    public IReadOnlyList<Guid> LeftByEarlierRun()
    {
        lock (_lock)
        {
            return _marks.List().Where(id => !_active.ContainsKey(id)).ToList();
        }
    }

    /// <summary>Ends an earlier run's build once it has been reported, unless new work has begun it again since.</summary>
    public void Forget(Guid projectId)
    {
        lock (_lock)
        {
            if (!_active.ContainsKey(projectId))
            {
                _marks.Clear(projectId);
            }
        }
    }
}
