using System.Diagnostics;

namespace SentryVibe.Testing;

/// <summary>Waits on a condition with a timeout: the only way tests synchronise with processes and sockets.</summary>
public static class Eventually
{
    public static async Task<T> WaitAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (clock.Elapsed < timeout)
        {
            try
            {
                var value = await probe();
                if (value is not null && value is not false) return value;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                last = e;
            }
            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(50));
        }
        throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0.#} s waiting for {what}." + (last is null ? "" : $" Last error: {last.Message}"), last);
    }

    public static Task WaitAsync(Func<Task<bool>> probe, TimeSpan timeout, string what, TimeSpan? interval = null) =>
        WaitAsync<object>(async () => await probe() ? true : null, timeout, what, interval);

    /// <summary>Waits for <paramref name="probe"/>; on timeout the message carries what <paramref name="diagnostics"/> says.</summary>
    public static async Task WaitAsync(Func<bool> probe, TimeSpan timeout, string what, Func<string>? diagnostics = null)
    {
        try
        {
            await WaitAsync(() => Task.FromResult(probe()), timeout, what, TimeSpan.FromMilliseconds(20));
        }
        catch (TimeoutException e) when (diagnostics is not null)
        {
            throw new TimeoutException(e.Message + "\n" + diagnostics(), e);
        }
    }
}
