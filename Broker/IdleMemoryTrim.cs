using System.Runtime;
using Microsoft.AspNetCore.Connections;
using SentryVibe.Broker.Previews;

namespace SentryVibe.Broker;

/// <summary>
/// Gives the memory a burst left behind back to the operating system once the broker goes quiet (docs/architecture.md,
/// decision 4). After a burst (runners linking after a restart, a stream of events, relayed downloads) the GC keeps its
/// young generation's budget and the regions it emptied committed, and the relay keeps its transport blocks, ready for
/// the next burst; a broker holding thousands of idle links would carry that memory for as long as it stays idle.
/// </summary>
/// <remarks>
/// When the broker has allocated <see cref="BurstBytes"/> since it last trimmed and then allocates less than
/// <see cref="QuietBytesPerSecond"/> for a whole <see cref="Period"/>, it releases the free transport blocks and runs
/// one compacting collection in <see cref="GCCollectionMode.Aggressive"/> mode, which decommits all the live objects do
/// not need. That is one pause (about 40–50 ms with 1,000 idle links on 2 cores) per burst, never while one goes on;
/// an idle broker, which allocates a few tens of KB a second for its heartbeats, trims again only after it has
/// allocated another <see cref="BurstBytes"/>.
/// </remarks>
public sealed class IdleMemoryTrim(IMemoryPoolFactory<byte> transportBlocks, ILogger<IdleMemoryTrim> logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(2);

    /// <summary>Twice the young generation's budget on a machine with a 32 MB cache: less is not worth a pause.</summary>
    public const long BurstBytes = 32L << 20;

    public const long QuietBytesPerSecond = 512L << 10;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        var trimmedAt = GC.GetTotalAllocatedBytes();
        var previous = trimmedAt;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = GC.GetTotalAllocatedBytes();
            var quiet = now - previous < QuietBytesPerSecond * Period.TotalSeconds;
            previous = now;
            if (!quiet || now - trimmedAt < BurstBytes) continue;

            var before = Environment.WorkingSet;
            var paused = GC.GetTotalPauseDuration();
            (transportBlocks as LargeBlockMemoryPoolFactory)?.ReleaseFree();
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            trimmedAt = previous = GC.GetTotalAllocatedBytes();
            logger.LogDebug("Quiet after a burst: working set {Before} → {After} MB, paused {Pause:0} ms",
                before >> 20, Environment.WorkingSet >> 20, (GC.GetTotalPauseDuration() - paused).TotalMilliseconds);
        }
    }
}
