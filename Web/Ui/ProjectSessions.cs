// The per-circuit cache behind "switching projects keeps everything": one live feed per visited project, keyed by id,
// fed from the event log. Switching back renders the cached snapshot at once; the feed keeps it current meanwhile.
// Every read is on behalf of the signed-in user: another user's project reads as not found (docs/security.md).
using SentryVibe.Web.Services;

namespace SentryVibe.Web.Ui;

/// <summary>Runs one use case in a scope of its own: a circuit lives long and its parts run concurrently, a DbContext must not.</summary>
public sealed class ScopedServices(IServiceScopeFactory scopes)
{
    public async Task<T> RunAsync<TService, T>(Func<TService, Task<T>> work) where TService : notnull
    {
        await using var scope = scopes.CreateAsyncScope();
        return await work(scope.ServiceProvider.GetRequiredService<TService>());
    }
}

/// <summary>Scoped (one per circuit): the feeds of the projects this browser tab has opened.</summary>
public sealed class ProjectSessions(
    ScopedServices services,
    EventNotifications notifications,
    IHostApplicationLifetime lifetime,
    ILoggerFactory loggers) : IAsyncDisposable
{
    /// <summary>Feeds kept live per tab; the least recently opened beyond this stop (and start again when reopened).</summary>
    public const int MaxLive = 12;

    private readonly Dictionary<Guid, ProjectSession> _sessions = [];
    private readonly LinkedList<Guid> _recent = [];
    private readonly Lock _gate = new();

    /// <summary>
    /// The tab's live session of a project, started on first use. <paramref name="prerendered"/>, the snapshot the
    /// server's first response showed, seeds a new session so its feed reads only what came after it.
    /// </summary>
    public ProjectSession Get(Guid userId, Guid projectId, ProjectSnapshot? prerendered = null)
    {
        ProjectSession? evicted = null;
        ProjectSession session;
        lock (_gate)
        {
            // A circuit is one signed-in user (signing out leaves it), so the project id is key enough.
            if (!_sessions.TryGetValue(projectId, out session!))
            {
                session = new ProjectSession(userId, projectId, services, notifications, loggers.CreateLogger<ProjectSession>());
                if (prerendered is not null) session.Seed(prerendered);
                _sessions[projectId] = session;
                // Feeds end with the app too, not only with their circuit: circuits may outlive the host's services.
                session.Start(lifetime.ApplicationStopping);
            }
            _recent.Remove(projectId);
            _recent.AddFirst(projectId);
            if (_recent.Count > MaxLive)
            {
                var oldest = _recent.Last!.Value;
                _recent.RemoveLast();
                _sessions.Remove(oldest, out evicted);
            }
        }
        if (evicted is not null) _ = evicted.DisposeAsync().AsTask();
        return session;
    }

    /// <summary>One read for the server's first response (prerendering): no feed, nothing kept.</summary>
    public Task<ProjectSnapshot> ReadSnapshotAsync(Guid userId, Guid projectId, CancellationToken ct) =>
        ProjectSession.ReadSnapshotAsync(services, userId, projectId, ct);

    /// <summary>A session that only shows <paramref name="snapshot"/> (prerendering): never started, not kept.</summary>
    public ProjectSession Prerendered(Guid userId, Guid projectId, ProjectSnapshot snapshot)
    {
        var session = new ProjectSession(userId, projectId, services, notifications, loggers.CreateLogger<ProjectSession>());
        session.Seed(snapshot);
        return session;
    }

    public async ValueTask DisposeAsync()
    {
        List<ProjectSession> all;
        lock (_gate)
        {
            all = [.. _sessions.Values];
            _sessions.Clear();
            _recent.Clear();
        }
        foreach (var s in all) await s.DisposeAsync();
    }
}

/// <summary>
/// What the server's first response showed of a project, handed to the circuit (PersistentComponentState) so it does not
/// read it again. <see cref="Events"/> is the log as it was then; empty when it was too long to hand over
/// (<see cref="HandOver"/>), and the circuit's feed then reads it from the start.
/// </summary>
public sealed record ProjectSnapshot(ProjectView? Project, RunnerView? Runner, IReadOnlyList<CheckpointView> Checkpoints,
    IReadOnlyList<EventView> Events);

/// <summary>
/// One project's state in this tab. The feed subscribes before it reads, then reads the log after the last id it has
/// on every wake-up (a new event, the listener reconnecting, or the periodic refresh), so nothing is missed or doubled.
/// </summary>
public sealed class ProjectSession : IAsyncDisposable
{
    /// <summary>Also how quickly a runner going offline shows: runner status changes are not events.</summary>
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(5);

    private readonly ScopedServices _services;
    private readonly EventNotifications _notifications;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly ProjectTimeline _timeline = new();
    private readonly SemaphoreSlim _poke = new(0, 1);
    private Task _loop = Task.CompletedTask;

    internal ProjectSession(Guid userId, Guid id, ScopedServices services, EventNotifications notifications, ILogger logger)
    {
        UserId = userId;
        Id = id;
        _services = services;
        _notifications = notifications;
        _logger = logger;
    }

    public Guid Id { get; }
    /// <summary>Whose eyes the feed reads with.</summary>
    public Guid UserId { get; }
    public ProjectView? Project { get; private set; }
    public RunnerView? Runner { get; private set; }
    public IReadOnlyList<CheckpointView> Checkpoints { get; private set; } = [];
    public TimelineSnapshot Timeline => _timeline.Current;
    public bool Loaded { get; private set; }
    public bool NotFound { get; private set; }

    /// <summary>What the user was typing and which tab was open, kept across project switches.</summary>
    public string Draft { get; set; } = "";
    public string Tab { get; set; } = "chat";

    /// <summary>Set while the feed cannot read (the database is away); cleared when it can again.</summary>
    public string? Problem { get; private set; }

    /// <summary>Raised on the feed's task after anything above changed.</summary>
    public event Action? Changed;

    internal void Start(CancellationToken appStopping) => _loop = Task.Run(async () =>
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token, appStopping);
        await RunAsync(both.Token);
    });

    /// <summary>
    /// One read of everything the page shows, for the server's first response: no subscription and no feed, which
    /// belong to the circuit (Web/README.md, UI).
    /// </summary>
    internal static async Task<ProjectSnapshot> ReadSnapshotAsync(ScopedServices services, Guid userId, Guid id, CancellationToken ct)
    {
        // Each read has its own scope, so they run side by side: the first response waits for the slowest, not the sum.
        var project = services.RunAsync<ProjectService, ProjectView?>(p => p.GetAsync(userId, id, ct));
        var runners = services.RunAsync<RunnerDirectory, IReadOnlyList<RunnerView>>(r => r.ListAsync(userId, ct));
        var checkpoints = services.RunAsync<ProjectService, IReadOnlyList<CheckpointView>>(async p => await p.ListCheckpointsAsync(userId, id, ct) ?? []);
        var events = new List<EventView>();
        while (true)
        {
            var after = events.Count > 0 ? events[^1].Id : 0;
            var page = await services.RunAsync<ProjectService, IReadOnlyList<EventView>>(p => p.ReadEventsAsync(userId, id, after, ProjectService.MaxEventPage, ct));
            events.AddRange(page);
            if (page.Count < ProjectService.MaxEventPage) break;
        }
        await Task.WhenAll(project, runners, checkpoints);
        if (await project is not { } found) return new ProjectSnapshot(null, null, [], []);
        return new ProjectSnapshot(found, (await runners).FirstOrDefault(r => r.Id == found.RunnerId), await checkpoints, events);
    }

    /// <summary>Takes over a prerendered snapshot before the feed starts: the feed then reads after its last event.</summary>
    internal void Seed(ProjectSnapshot snapshot)
    {
        _timeline.Apply(snapshot.Events);
        Project = snapshot.Project;
        Runner = snapshot.Runner;
        Checkpoints = snapshot.Checkpoints;
        NotFound = snapshot.Project is null;
        Loaded = true;
    }

    /// <summary>Read now rather than at the next wake-up (after the user did something).</summary>
    public void Poke()
    {
        try { _poke.Release(); }
        catch (SemaphoreFullException) { }
    }

    private async Task RunAsync(CancellationToken ct)
    {
        using var subscription = _notifications.Subscribe(Id);
        var backoff = TimeSpan.FromSeconds(1);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await ReadAsync(ct);
                if (Problem is not null) Problem = null;
                backoff = TimeSpan.FromSeconds(1);
                Changed?.Invoke();
                if (NotFound) return;
                // Whichever comes first; the other wait is called off so it cannot swallow a later poke.
                using var round = CancellationTokenSource.CreateLinkedTokenSource(ct);
                await Task.WhenAny(subscription.WaitAsync(RefreshEvery, round.Token), _poke.WaitAsync(RefreshEvery, round.Token));
                await round.CancelAsync();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return; // the app is shutting down
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "Project feed {ProjectId} could not read; retrying in {Delay}", Id, backoff);
                Problem = "Lost touch with the database; retrying…";
                Changed?.Invoke();
                try { await Task.Delay(backoff, ct); }
                catch (OperationCanceledException) { return; }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(15).Ticks));
            }
        }
    }

    private async Task ReadAsync(CancellationToken ct)
    {
        var hadCheckpoints = Timeline.Checkpoints.Count;
        var first = !Loaded;
        while (true)
        {
            var after = Timeline.LastEventId;
            var page = await _services.RunAsync<ProjectService, IReadOnlyList<EventView>>(p => p.ReadEventsAsync(UserId, Id, after, ProjectService.MaxEventPage, ct));
            _timeline.Apply(page);
            if (page.Count < ProjectService.MaxEventPage) break;
        }

        var project = await _services.RunAsync<ProjectService, ProjectView?>(p => p.GetAsync(UserId, Id, ct));
        if (project is null)
        {
            NotFound = true;
            Loaded = true;
            Project = null;
            return;
        }
        var runners = await _services.RunAsync<RunnerDirectory, IReadOnlyList<RunnerView>>(r => r.ListAsync(UserId, ct));
        Runner = runners.FirstOrDefault(r => r.Id == project.RunnerId);
        if (first || Timeline.Checkpoints.Count != hadCheckpoints)
        {
            Checkpoints = await _services.RunAsync<ProjectService, IReadOnlyList<CheckpointView>>(async p => await p.ListCheckpointsAsync(UserId, Id, ct) ?? []);
        }
        Project = project;
        Loaded = true;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _loop; }
        catch (OperationCanceledException) { }
        _stop.Dispose();
        _poke.Dispose();
    }
}
