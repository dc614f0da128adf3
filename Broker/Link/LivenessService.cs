using System.Net.WebSockets;
using Npgsql;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Heartbeats both ways and the runners table's truth about who is online: pings every held runner, closes links that
/// went silent, refreshes LastSeenAt of the rest in one statement, and marks offline the runners of replicas that died.
/// </summary>
public sealed class LivenessService(
    RunnerConnectionRegistry registry,
    RunnerStore runners,
    EventIntake intake,
    ILogger<LivenessService> logger) : BackgroundService
{
    // Closed well before OfflineAfter so the runner is offline in the table within it.
    private static readonly TimeSpan SilentLimit = LinkProtocol.OfflineAfter - LinkProtocol.HeartbeatInterval;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await intake.WarmUpAsync(stoppingToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.LogWarning("Intake warm-up skipped: {Message}", e.Message);
        }

        using var timer = new PeriodicTimer(LinkProtocol.HeartbeatInterval);
        do
        {
            var alive = new List<string>();
            foreach (var connection in registry.All)
            {
                if (!connection.IsReady || connection.RunnerId is not { } runnerId) continue;
                if (connection.SinceHeard > SilentLimit)
                {
                    logger.LogInformation("Runner {Runner} silent for {Seconds:0} s: closing its link", runnerId, connection.SinceHeard.TotalSeconds);
                    _ = connection.CloseAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HeartbeatTimeout);
                    continue;
                }
                alive.Add(runnerId);
                _ = connection.PingAsync(LinkProtocol.HeartbeatInterval * 2);
            }

            try
            {
                await runners.TouchAsync(alive, stoppingToken);
                foreach (var id in await runners.SweepAsync(LinkProtocol.OfflineAfter, stoppingToken))
                {
                    logger.LogInformation("Runner {Runner} marked offline: not heard from in {Seconds} s", id, LinkProtocol.OfflineAfter.TotalSeconds);
                }
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException)
            {
                logger.LogWarning("Liveness update failed: {Message}", e.Message);
            }
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try { return await timer.WaitForNextTickAsync(cancellationToken); }
        catch (OperationCanceledException) { return false; }
    }
}
