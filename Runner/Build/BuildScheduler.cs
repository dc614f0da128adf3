using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Build;

/// <summary>What a job of a project does: agent turns (they hold a build slot and count as a build), a restore, a delete.</summary>
public enum JobKind
{
    Turns,
    Restore,
    Delete,
}

/// <summary>
/// The runner's job table: one job per project at a time (a follow-up waits behind the running turn), at most
/// <see cref="BuildOptions.MaxConcurrentBuilds"/> builds at once with the rest queued (each told its position),
/// a folder reserved for one project at a time, and cancellation per project or for all at shutdown. It begins and
/// ends builds in <see cref="ActiveBuilds"/>; what a job does is the caller's.
/// </summary>
public sealed class BuildScheduler(IEventSink events, ActiveBuilds active, IOptions<BuildOptions> options, ILogger<BuildScheduler> logger) : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<Guid, Job> _jobs = [];
    private readonly Dictionary<string, Guid> _reservedSlugs = [];
    private readonly LinkedList<Job> _queue = new();
    private readonly CancellationTokenSource _shutdown = new();
    private int _running;

    /// <summary>Cancelled when the runner shuts down; every job's token is linked to it.</summary>
    public CancellationToken ShuttingDown => _shutdown.Token;

    public bool IsShuttingDown => _shutdown.IsCancellationRequested;

    public bool IsBusy(Guid projectId)
    {
        lock (_gate)
        {
            return _jobs.ContainsKey(projectId);
        }
    }

    /// <summary>Completes when the project's current job (if any) has finished.</summary>
    public Task WhenIdleAsync(Guid projectId)
    {
        lock (_gate)
        {
            return _jobs.TryGetValue(projectId, out var job) ? job.Completion : Task.CompletedTask;
        }
    }

    /// <summary>Queues <paramref name="work"/> for the project; null when it is on its way, else why not (for the user).</summary>
    public string? Enqueue(Guid projectId, string slug, JobKind kind, Func<CancellationToken, Task> work)
    {
        var job = new Job(projectId, slug, kind, usesSlot: kind == JobKind.Turns, _shutdown.Token);
        lock (_gate)
        {
            if (_shutdown.IsCancellationRequested)
            {
                return "The runner is shutting down.";
            }
            if (_jobs.TryGetValue(projectId, out var busy))
            {
                if (busy.Kind == JobKind.Delete)
                {
                    return "The project is being deleted.";
                }
                if (kind == JobKind.Restore)
                {
                    return "The project is busy with a build; wait for it or cancel it before restoring.";
                }
                // A follow-up sent while the previous turn is finishing (or running) runs right after it.
                job.Previous = busy;
            }
            if (_reservedSlugs.TryGetValue(slug, out var other) && other != projectId)
            {
                return $"The folder '{slug}' is being used by another project right now.";
            }
            if (kind == JobKind.Turns)
            {
                active.Begin(projectId);
            }
            _jobs[projectId] = job;
            _reservedSlugs[slug] = projectId;
        }
        job.Start(() => RunJobAsync(job, work));
        return null;
    }

    /// <summary>Cancels the project's turns (running or queued); null when there were some, else why not.</summary>
    public string? CancelTurns(Guid projectId)
    {
        lock (_gate)
        {
            if (!_jobs.TryGetValue(projectId, out var job) || job.Kind != JobKind.Turns)
            {
                return "No build is running for this project.";
            }
            job.CancelChain();
            return null;
        }
    }

    /// <summary>
    /// Cancels whatever the project is doing and runs <paramref name="work"/> once that has ended. A delete already
    /// under way is not started twice.
    /// </summary>
    public void Delete(Guid projectId, string? slug, Func<Task> work)
    {
        Job? previous;
        var job = new Job(projectId, slug, JobKind.Delete, usesSlot: false, _shutdown.Token);
        lock (_gate)
        {
            if (_jobs.TryGetValue(projectId, out previous) && previous.Kind == JobKind.Delete)
            {
                return;
            }
            previous?.CancelChain();
            _jobs[projectId] = job;
        }
        job.Start(() => RunJobAsync(job, async _ =>
        {
            if (previous is not null)
            {
                await previous.Completion;
            }
            await work();
        }));
    }

    /// <summary>Cancels every job and completes when all have ended (host stop and disposal both call it).</summary>
    public Task StopAsync()
    {
        lock (_gate)
        {
            if (!_shutdown.IsCancellationRequested)
            {
                _shutdown.Cancel();
            }
            return Task.WhenAll(_jobs.Values.Select(j => j.Completion).ToArray());
        }
    }

    /// <summary>Disposal by the container (tests, or a host that never stopped) stops every job too.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().WaitAsync(TimeSpan.FromSeconds(15)).ContinueWith(_ => { }, TaskScheduler.Default);
        _shutdown.Dispose();
    }

    private async Task RunJobAsync(Job job, Func<CancellationToken, Task> work)
    {
        var slotHeld = false;
        try
        {
            if (job.Previous is { } previous)
            {
                await previous.Completion;
                job.Previous = null;
                job.Token.ThrowIfCancellationRequested();
            }
            if (job.UsesSlot)
            {
                slotHeld = await AcquireSlotAsync(job);
                if (!slotHeld)
                {
                    await PublishAsync(job.ProjectId, new BuildCancelled("Cancelled while queued."));
                    return;
                }
            }
            await work(job.Token);
        }
        catch (OperationCanceledException) when (job.Token.IsCancellationRequested)
        {
            await PublishAsync(job.ProjectId, new BuildCancelled("Cancelled before it started."));
        }
        catch (Exception e)
        {
            logger.LogError(e, "Job {Kind} of project {ProjectId} failed", job.Kind, job.ProjectId);
        }
        finally
        {
            if (slotHeld)
            {
                ReleaseSlot();
            }
            lock (_gate)
            {
                if (_jobs.TryGetValue(job.ProjectId, out var current) && current == job)
                {
                    _jobs.Remove(job.ProjectId);
                }
                if (!_jobs.ContainsKey(job.ProjectId))
                {
                    active.End(job.ProjectId);
                    if (job.Slug is not null && _reservedSlugs.TryGetValue(job.Slug, out var owner) && owner == job.ProjectId)
                    {
                        _reservedSlugs.Remove(job.Slug);
                    }
                }
            }
        }
    }

    /// <summary>True once the job holds a slot; false when it was cancelled while waiting.</summary>
    private async Task<bool> AcquireSlotAsync(Job job)
    {
        int position;
        lock (_gate)
        {
            if (_running < Math.Max(1, options.Value.MaxConcurrentBuilds))
            {
                _running++;
                return true;
            }
            _queue.AddLast(job);
            position = _queue.Count;
        }
        await PublishAsync(job.ProjectId, new BuildQueued(position));
        try
        {
            await job.SlotGranted.Task.WaitAsync(job.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                if (_queue.Remove(job))
                {
                    return false;
                }
            }
            // Granted at the same moment it was cancelled: the slot is ours to give back.
            ReleaseSlot();
            return false;
        }
    }

    private void ReleaseSlot()
    {
        List<(Guid ProjectId, int Position)> moved = [];
        lock (_gate)
        {
            if (_queue.First is { } next)
            {
                _queue.RemoveFirst();
                next.Value.SlotGranted.TrySetResult();
                var position = 1;
                foreach (var waiting in _queue)
                {
                    moved.Add((waiting.ProjectId, position++));
                }
            }
            else
            {
                _running--;
            }
        }
        foreach (var (projectId, position) in moved)
        {
            _ = PublishAsync(projectId, new BuildQueued(position)).AsTask();
        }
    }

    private ValueTask PublishAsync(Guid projectId, ProjectEvent body) => events.PublishAsync(projectId, body, CancellationToken.None);

    private sealed class Job(Guid projectId, string? slug, JobKind kind, bool usesSlot, CancellationToken shutdown)
    {
        private readonly CancellationTokenSource _cts = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Guid ProjectId { get; } = projectId;

        public string? Slug { get; } = slug;

        public JobKind Kind { get; } = kind;

        public bool UsesSlot { get; } = usesSlot;

        public CancellationToken Token => _cts.Token;

        public TaskCompletionSource SlotGranted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>The project's job this one waits for (a follow-up queued behind a running turn).</summary>
        public Job? Previous { get; set; }

        public Task Completion => _completion.Task;

        /// <summary>Cancels this job and the ones it waits for.</summary>
        public void CancelChain()
        {
            for (var j = this; j is not null; j = j.Previous)
            {
                j.Cancel();
            }
        }

        private void Cancel()
        {
            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already finished.
            }
        }

        public void Start(Func<Task> body) =>
            _ = Task.Run(async () =>
            {
                try
                {
                    await body();
                }
                finally
                {
                    _completion.TrySetResult();
                    _cts.Dispose();
                }
            });
    }
}
