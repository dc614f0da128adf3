using System.Runtime;
using Microsoft.AspNetCore.Connections;
using SentryVibe.Broker.Previews;

namespace SentryVibe.Broker;

/// <summary>
/// Gives the memory a burst left behind back to the operating system once the broker goes quiet (docs/architecture.md,
/// decision 4). After a burst (a flood of preview requests, relayed downloads, a stream of events) the GC keeps its
/// young generation's budget and the regions it emptied committed, and the relay keeps its transport blocks, ready for
/// the next one; a broker left without traffic would carry that memory for as long as it stays so.
/// </summary>
/// <remarks>
/// When the broker has allocated <see cref="BurstBytes"/> since it last trimmed and then, over the last
/// <see cref="QuietFor"/>, less than <see cref="QuietBytesPerSecond"/> on average, it releases the free transport
/// blocks and runs one compacting collection in <see cref="GCCollectionMode.Aggressive"/> mode, which decommits all the
/// live objects do not need. That is one pause per burst, never while one goes on, and not in the short pauses of
/// someone at work on a preview: with 2 s of quiet, trims fell between the page loads of bench <c>preview</c> (in one
/// pair of runs, 3 of 7 astro loads took 259–278 ms against 153–213 without). Quiet means almost nothing allocated: 1,000 idle links allocate about 440 KB a second
/// for their heartbeats, which fills the young generation again within about 35 s, so a trim there would not last
/// (measured: 163 → 148 MB in a 60 ms pause, back to 164 MB 20 s later) and is not made.
/// </remarks>
public sealed class IdleMemoryTrim(IMemoryPoolFactory<byte> transportBlocks, ILogger<IdleMemoryTrim> logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan QuietFor = TimeSpan.FromSeconds(10);

    /// <summary>Twice the young generation's budget on a machine with a 32 MB cache: less is not worth a pause.</summary>
    public const long BurstBytes = 32L << 20;

    public const long QuietBytesPerSecond = 64L << 10;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Period);
        var trimmedAt = GC.GetTotalAllocatedBytes();
        // What had been allocated at each of the last ticks, oldest first, back to QuietFor ago.
        var window = new Queue<long>([trimmedAt]);
        var ticks = (int)(QuietFor / Period);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = GC.GetTotalAllocatedBytes();
            window.Enqueue(now);
            if (window.Count <= ticks) continue;
            var quiet = now - window.Dequeue() < QuietBytesPerSecond * QuietFor.TotalSeconds;
            if (!quiet || now - trimmedAt < BurstBytes) continue;

            var before = Environment.WorkingSet;
            var paused = GC.GetTotalPauseDuration();
            (transportBlocks as LargeBlockMemoryPoolFactory)?.ReleaseFree();
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            trimmedAt = GC.GetTotalAllocatedBytes();
            window.Clear();
            window.Enqueue(trimmedAt);
            logger.LogDebug("Quiet after a burst: working set {Before} → {After} MB, paused {Pause:0} ms",
                before >> 20, Environment.WorkingSet >> 20, (GC.GetTotalPauseDuration() - paused).TotalMilliseconds);
        }
    }
}
