using Microsoft.Extensions.Logging;
using Npgsql;

namespace SentryVibe.Data;

/// <summary>
/// One dedicated connection that LISTENs on the given channels and stays open: when it drops, it reconnects with
/// exponential backoff. NOTIFYs sent while it was not listening are gone, so after every (re)connect it calls
/// <see cref="OnConnected"/> for the caller to catch up; when the connection has been quiet for <see cref="IdleCheck"/>
/// it pings it (an idle socket can die silently) and calls <see cref="OnIdle"/> as a safety net. Web and Broker both
/// use it (docs/architecture.md, decision 3).
/// </summary>
public sealed class PostgresListener(NpgsqlDataSource dataSource, ILogger logger, params string[] channels)
{
    /// <summary>Called on the connection's thread for each notification: keep it short.</summary>
    public required Action<string, string> OnNotification { get; init; }

    /// <summary>Called once LISTEN is in place, the first time and after every reconnect.</summary>
    public Func<CancellationToken, Task> OnConnected { get; init; } = _ => Task.CompletedTask;

    /// <summary>Called after <see cref="IdleCheck"/> without a notification.</summary>
    public Func<CancellationToken, Task> OnIdle { get; init; } = _ => Task.CompletedTask;

    public TimeSpan IdleCheck { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Listens until <paramref name="stoppingToken"/> is cancelled; never throws otherwise.</summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var backoff = InitialBackoff;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => OnNotification(e.Channel, e.Payload);
                await using (var listen = new NpgsqlCommand(string.Concat(channels.Select(c => $"LISTEN {c};")), connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                backoff = InitialBackoff;
                logger.LogDebug("Listening on {Channels}", string.Join(", ", channels));

                await OnConnected(stoppingToken);
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (!await connection.WaitAsync(IdleCheck, stoppingToken))
                    {
                        await using (var ping = new NpgsqlCommand("SELECT 1", connection))
                        {
                            await ping.ExecuteNonQueryAsync(stoppingToken);
                        }
                        await OnIdle(stoppingToken);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Listener on {Channels} lost its database connection; reconnecting in {Delay} ms",
                    string.Join(", ", channels), backoff.TotalMilliseconds);
                try { await Task.Delay(backoff, stoppingToken); } catch (OperationCanceledException) { return; }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }
}
