using System.Diagnostics;

namespace SentryVibe.Testing;

/// <summary>Waiting on conditions with a deadline instead of sleeping.</summary>
public static class Eventually
{
    public static async Task WaitAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        var clock = Stopwatch.StartNew();
        var delay = 10;
        while (!condition())
        {
            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0}s waiting for {what}.{(diagnostics is null ? "" : "\n" + diagnostics())}");
            }
            await Task.Delay(delay);
            delay = Math.Min(delay * 2, 100);
        }
    }
}
