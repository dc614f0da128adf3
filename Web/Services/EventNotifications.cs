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

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => Dispatch(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {SentryVibeDb.EventsChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                _listening.TrySetResult();
                backoff = TimeSpan.FromSeconds(1);
                // Notifications sent while we were not listening are lost: everybody re-reads.
                WakeAll();
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (!await connection.WaitAsync(PingEvery, stoppingToken))
                    {
                        // An idle socket can die silently; a round trip finds out.
                        await using var ping = new NpgsqlCommand("SELECT 1", connection);
                        await ping.ExecuteNonQueryAsync(stoppingToken);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Event listener lost its database connection; reconnecting in {Delay}", backoff);
                try { await Task.Delay(backoff, stoppingToken); }
                catch (OperationCanceledException) { break; }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    /// <summary>Payload "projectId:eventId" as the broker and Web send it.</summary>
    private void Dispatch(string payload)
    {
        var parts = payload.Split(':', 2);
        if (!Guid.TryParse(parts[0], out var projectId))
        {
            WakeAll();
            return;
        }
        var eventId = parts.Length > 1 && long.TryParse(parts[1], out var id) ? id : 0;
        foreach (var s in _subscriptions.Keys)
        {
            if (s.ProjectId is null || s.ProjectId == projectId) s.Signal(projectId, eventId);
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
