using System.Net.WebSockets;
using Npgsql;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Heartbeats both ways and the runners table's truth about who is online: pings the held runners it has not heard
/// from, closes links that went silent, refreshes LastSeenAt of the rest in one statement, and marks offline the
/// runners of replicas that died. Each link is looked at once per heartbeat interval, at its own slice of it: a
/// thousand pings in flight at one tick were an allocation burst the heap kept (bench <c>idle</c>, 1,000 runners:
/// broker RSS 297 → 279 MB, A/B of three runs each; the command round trip did not move).
/// </summary>
/// <remarks>
/// A runner whose own heartbeat (or any call) arrived within the last interval is not pinged: its heartbeat's answer
/// already tells it the broker is there, and its arrival tells the broker the same. Pinging it anyway doubled every
/// idle link's traffic, both sides' CPU for it (docs/runner-protocol.md, "Liveness").
/// </remarks>
public sealed class LivenessService(
    RunnerConnectionRegistry registry,
    RunnerStore runners,
    ILogger<LivenessService> logger) : BackgroundService
{
    // Closed well before OfflineAfter so the runner is offline in the table within it.
    private static readonly TimeSpan SilentLimit = LinkProtocol.OfflineAfter - LinkProtocol.HeartbeatInterval;

    /// <summary>
    /// Nothing of its own (a heartbeat, a call) for a whole interval: pinged, at every visit while that lasts, its answers
    /// keeping the link (they count as heard, not as spoken). A runner heartbeating every interval is short of it at each
    /// visit, whatever the phase of its heartbeats against the visits. When answers counted as spoken, the limit had to be
    /// a slice short of the interval (else a quiet runner was pinged every other visit only, and a late tick found it
    /// silent past <see cref="SilentLimit"/>), and then every link whose heartbeat fell in the slice before its visit was
    /// pinged at every visit: one in ten of a thousand idle links.
    /// </summary>
    private static readonly TimeSpan QuietAfter = LinkProtocol.HeartbeatInterval;

    /// <summary>How many slices a heartbeat interval is cut into; a link's slice comes from its connection id.</summary>
    internal const int Slices = 10;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(LinkProtocol.HeartbeatInterval / Slices);
        var alive = new List<string>();
        var slice = 0;
        do
        {
            foreach (var connection in registry.All)
            {
                if (!connection.IsReady || connection.RunnerId is not { } runnerId || SliceOf(connection) != slice) continue;
                if (connection.SinceHeard > SilentLimit)
                {
                    logger.LogInformation("Runner {Runner} silent for {Seconds:0} s: closing its link", runnerId, connection.SinceHeard.TotalSeconds);
                    _ = connection.CloseAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HeartbeatTimeout);
                    continue;
                }
                alive.Add(runnerId);
                if (connection.SinceSpoke > QuietAfter) _ = connection.PingAsync(LinkProtocol.HeartbeatInterval * 2);
            }

            if (++slice < Slices) continue;
            slice = 0;
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
            alive.Clear();
        }
        while (await WaitAsync(timer, stoppingToken));
    }

    internal static int SliceOf(RunnerConnection connection) => (int)((uint)connection.ConnectionId.GetHashCode() % Slices);

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try { return await timer.WaitForNextTickAsync(cancellationToken); }
        catch (OperationCanceledException) { return false; }
    }
}
