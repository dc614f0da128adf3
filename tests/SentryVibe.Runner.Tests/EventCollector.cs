using System.Collections.Concurrent;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Tests;

/// <summary>The in-memory <see cref="IEventSink"/>: records what the runner publishes and lets tests wait for it.</summary>
public sealed class EventCollector : IEventSink
{
    private readonly Lock _gate = new();
    private readonly List<(Guid? ProjectId, ProjectEvent Body)> _events = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Called with every event as it is published, before it is recorded.</summary>
    public Action<Guid?, ProjectEvent>? OnPublish { get; set; }

    public ValueTask PublishAsync(Guid? projectId, ProjectEvent body, CancellationToken cancellationToken = default)
    {
        OnPublish?.Invoke(projectId, body);
        TaskCompletionSource changed;
        lock (_gate)
        {
            _events.Add((projectId, body));
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        changed.TrySetResult();
        return ValueTask.CompletedTask;
    }

    public IReadOnlyList<ProjectEvent> For(Guid projectId)
    {
        lock (_gate)
        {
            return _events.Where(e => e.ProjectId == projectId).Select(e => e.Body).ToList();
        }
    }

    /// <summary>Waits until the project's events satisfy <paramref name="condition"/>; re-checked on every new event.</summary>
    public async Task<IReadOnlyList<ProjectEvent>> WaitAsync(Guid projectId, Func<IReadOnlyList<ProjectEvent>, bool> condition, TimeSpan timeout, string what)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                changed = _changed.Task;
            }
            var events = For(projectId);
            if (condition(events))
            {
                return events;
            }
            try
            {
                await changed.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0}s waiting for {what}. Events so far:\n{Describe(For(projectId))}");
            }
        }
    }

    /// <summary>Waits for the end of a build: completed, failed or cancelled (the n-th one when <paramref name="count"/> > 1).</summary>
    public Task<IReadOnlyList<ProjectEvent>> WaitForEndAsync(Guid projectId, TimeSpan timeout, int count = 1) =>
        WaitAsync(projectId, e => e.Count(IsEnd) >= count, timeout, $"build end #{count}");

    public static bool IsEnd(ProjectEvent e) => e is BuildCompleted or BuildFailed or BuildCancelled;

    public static string Describe(IEnumerable<ProjectEvent> events) =>
        string.Join("\n", events.Select(e => "  " + e));
}

public static class EventListExtensions
{
    /// <summary>Position of this very event object (reference identity, not record equality).</summary>
    public static int IndexOf(this IReadOnlyList<ProjectEvent> events, ProjectEvent item)
    {
        for (var i = 0; i < events.Count; i++)
        {
            if (ReferenceEquals(events[i], item))
            {
                return i;
            }
        }
        return -1;
    }
}
