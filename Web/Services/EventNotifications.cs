// One LISTEN connection per Web process; every open event stream (SSE, UI) subscribes here instead of polling.
using System.Collections.Concurrent;
using System.Threading.Channels;
using Npgsql;
using SentryVibe.Data;

namespace SentryVibe.Web.Services;

public sealed class EventNotifications(NpgsqlDataSource dataSource, ILogger<EventNotifications> logger) : BackgroundService
{
    private static readonly TimeSpan PingEvery = TimeSpan.FromSeconds(30);
    private readonly ConcurrentDictionary<EventSubscription, byte> _subscriptions = new();
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once LISTEN is in place (the first time).</summary>
    public Task Listening => _listening.Task;

    /// <summary>Wake-ups for one project, or for every project when <paramref name="projectId"/> is null.</summary>
    public EventSubscription Subscribe(Guid? projectId)
    {
        var subscription = new EventSubscription(projectId, s => _subscriptions.TryRemove(s, out _));
        _subscriptions.TryAdd(subscription, 0);
        return subscription;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new PostgresListener(dataSource, logger, SentryVibeDb.EventsChannel)
        {
            OnNotification = (_, payload) => Dispatch(payload),
            OnConnected = _ =>
            {
                _listening.TrySetResult();
                // Notifications sent while we were not listening are lost: everybody re-reads.
                WakeAll();
                return Task.CompletedTask;
            },
            IdleCheck = PingEvery,
            InitialBackoff = TimeSpan.FromSeconds(1),
            MaxBackoff = TimeSpan.FromSeconds(30),
        }.RunAsync(stoppingToken);

    private void Dispatch(string payload)
    {
        if (!EventNotification.TryParse(payload, out var notification))
        {
            WakeAll();
            return;
        }
        foreach (var s in _subscriptions.Keys)
        {
            if (s.ProjectId is null || s.ProjectId == notification.ProjectId) s.Signal(notification.ProjectId, notification.EventId);
        }
    }

    private void WakeAll()
    {
        foreach (var s in _subscriptions.Keys) s.Signal(s.ProjectId, 0);
    }
}

/// <summary>A coalescing wake-up: many notifications between two waits count as one. The data is always re-read from the log.</summary>
public sealed class EventSubscription : IDisposable
{
    private readonly Channel<(Guid? ProjectId, long EventId)> _signals =
        Channel.CreateBounded<(Guid?, long)>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly Action<EventSubscription> _remove;

    internal EventSubscription(Guid? projectId, Action<EventSubscription> remove)
    {
        ProjectId = projectId;
        _remove = remove;
    }

    public Guid? ProjectId { get; }

    internal void Signal(Guid? projectId, long eventId) => _signals.Writer.TryWrite((projectId, eventId));

    /// <summary>True when woken, false when <paramref name="timeout"/> passed first.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        if (_signals.Reader.TryRead(out _)) return true;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await _signals.Reader.ReadAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }

    public void Dispose() => _remove(this);
}
