// Keeps a chatty dev server from flooding the event log: at most N lines per second go out, the rest are counted
// and reported as one summary line.
namespace SentryVibe.Runner.DevServers;

public sealed class LogThrottle(int maxLinesPerSecond)
{
    private readonly object _gate = new();
    private long? _windowStartMs;
    private int _sentInWindow;
    private int _dropped;

    /// <summary>The lines to publish now for <paramref name="line"/> arriving at <paramref name="nowMs"/> (monotonic).</summary>
    public IReadOnlyList<string> Offer(string line, long nowMs)
    {
        lock (_gate)
        {
            var output = new List<string>(2);
            Roll(nowMs, output);
            if (_sentInWindow < maxLinesPerSecond)
            {
                _sentInWindow++;
                output.Add(line);
            }
            else
            {
                _dropped++;
            }
            return output;
        }
    }

    /// <summary>The summary of dropped lines once their window is over (or always, with <paramref name="final"/>).</summary>
    public string? Flush(long nowMs, bool final = false)
    {
        lock (_gate)
        {
            var output = new List<string>(1);
            Roll(nowMs, output);
            if (final && _dropped > 0)
            {
                output.Add(Summary(_dropped));
                _dropped = 0;
            }
            return output.Count == 0 ? null : output[0];
        }
    }

    private void Roll(long nowMs, List<string> output)
    {
        if (_windowStartMs is { } start && nowMs - start < 1000)
        {
            return;
        }
        if (_dropped > 0)
        {
            output.Add(Summary(_dropped));
            _dropped = 0;
        }
        _windowStartMs = nowMs;
        _sentInWindow = 0;
    }

    private string Summary(int dropped) =>
        $"[sentryvibe] {dropped} more line{(dropped == 1 ? "" : "s")} not shown (dev server output is limited to {maxLinesPerSecond} lines per second)";
}
