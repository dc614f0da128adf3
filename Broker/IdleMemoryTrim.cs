using System.Runtime;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using SentryVibe.Broker.Previews;

namespace SentryVibe.Broker;

/// <summary>
/// Gives back to the operating system the memory a quiet broker does not need (docs/architecture.md, decision 4). After
/// a burst (a flood of preview requests, relayed downloads, a stream of events) the GC keeps its young generation's
/// budget and the regions it emptied committed, and the relay keeps its transport blocks, ready for the next one; a
/// broker left without traffic would carry that memory for as long as it stays so. A broker holding idle runner links
/// allocates a little all the time (its liveness pass, the links' pings) into fresh pages of the young generation, so
/// its working set creeps up by what it allocated until the young generation is full again.
/// </summary>
/// <remarks>
/// When the broker has allocated <see cref="TrimAfterBytes"/> since it last trimmed and, over the last
/// <see cref="QuietFor"/>, less than <see cref="QuietBytesPerSecond"/> on average, it runs one compacting collection in
/// <see cref="GCCollectionMode.Aggressive"/> mode, which decommits all the live objects do not need (after a burst,
/// <see cref="BurstBytes"/>, it first releases the relay's free transport blocks), and hands back the native heap's free
/// pages (<see cref="NativeHeap"/>). Never while traffic goes on, and not
/// in the short pauses of someone at work on a preview: with 2 s of quiet, trims fell between the page loads of bench
/// <c>preview</c> (in one pair of runs, 3 of 7 astro loads took 259–278 ms against 153–213 without). With 1,000 idle
/// links (bench <c>idle</c>) the broker allocates 10–15 KB a second: the first trim takes it from about 158 to 141 MB in
/// a pause of 35–45 ms (146 without the native heap's pages), and one about every minute (25–40 ms) keeps it there; with
/// 32 MB between trims it crept back up by what it allocated (148 → 152 MB in 5 minutes, on its way to the 165 of a full
/// young generation).
/// </remarks>
public sealed class IdleMemoryTrim(IMemoryPoolFactory<byte> transportBlocks, ILogger<IdleMemoryTrim> logger) : BackgroundService
{
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan QuietFor = TimeSpan.FromSeconds(10);

    /// <summary>What a quiet broker may add to its working set before it trims again (each trim is one short pause).</summary>
    public const long TrimAfterBytes = 2L << 20;

    /// <summary>
    /// After this much (a burst) a trim also releases the relay's free transport blocks. Not after less: the idle links'
    /// next heartbeats took as many new ones at once, 2 MB of them, and the broker trimmed every 15 s instead of about
    /// once a minute, for nothing.
    /// </summary>
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
            if (!quiet || now - trimmedAt < TrimAfterBytes) continue;

            var before = Environment.WorkingSet;
            var paused = GC.GetTotalPauseDuration();
            if (now - trimmedAt >= BurstBytes) (transportBlocks as LargeBlockMemoryPoolFactory)?.ReleaseFree();
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            NativeHeap.Trim();
            trimmedAt = GC.GetTotalAllocatedBytes();
            window.Clear();
            window.Enqueue(trimmedAt);
            logger.LogDebug("Quiet: working set {Before} → {After} MB, paused {Pause:0} ms",
                before >> 20, Environment.WorkingSet >> 20, (GC.GetTotalPauseDuration() - paused).TotalMilliseconds);
        }
    }
}

/// <summary>
/// glibc keeps the memory freed in its per-thread arenas for reuse; what a burst allocated natively (among it the JIT's
/// and the type loader's scratch for the code a thousand Hellos ran) stays in the working set until
/// <c>malloc_trim</c> hands back the free pages of every arena. Not glibc (musl, other systems): nothing to do.
/// </summary>
internal static class NativeHeap
{
    private static bool _unavailable = !OperatingSystem.IsLinux();

    public static void Trim()
    {
        if (_unavailable) return;
        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            _unavailable = true;
        }
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int MallocTrim(nuint pad);
}
