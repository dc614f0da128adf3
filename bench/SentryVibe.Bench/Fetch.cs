// The timed requests the relay and preview scenarios make: a whole small response, a large download's rate, and two
// ways to the same resource measured alternately so both see the same machine noise.
using System.Diagnostics;

namespace SentryVibe.Bench;

public static class Fetch
{
    /// <summary>Milliseconds until the whole response has been read.</summary>
    /// <exception cref="InvalidOperationException">The response was not a success.</exception>
    public static async Task<double> TimedGetAsync(HttpClient http, HttpRequestMessage request)
    {
        var start = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"GET {request.RequestUri}: {(int)response.StatusCode}");
        return elapsed;
    }

    /// <summary>MB/s (10^6 bytes) of a download read whole through a 64 KiB buffer.</summary>
    /// <exception cref="InvalidOperationException">Not a success, or not <paramref name="expectedBytes"/> long.</exception>
    public static async Task<double> DownloadAsync(HttpClient http, HttpRequestMessage request, long expectedBytes)
    {
        var buffer = new byte[64 * 1024];
        var start = Stopwatch.GetTimestamp();
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var body = await response.Content.ReadAsStreamAsync();
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(buffer)) > 0) total += read;
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (!response.IsSuccessStatusCode || total != expectedBytes)
        {
            throw new InvalidOperationException($"GET {request.RequestUri}: {(int)response.StatusCode}, {total} of {expectedBytes} bytes");
        }
        return total / seconds / 1e6;
    }

    /// <summary>
    /// <paramref name="first"/> then <paramref name="second"/>, <paramref name="count"/> times after
    /// <paramref name="warmUp"/> rounds not counted, with <paramref name="pause"/> before each round: each one's figures.
    /// </summary>
    public static async Task<(List<double> First, List<double> Second)> AlternatelyAsync(int warmUp, int count,
        Func<Task<double>> first, Func<Task<double>> second, TimeSpan pause = default)
    {
        var (firsts, seconds) = (new List<double>(count), new List<double>(count));
        for (var i = -warmUp; i < count; i++)
        {
            if (pause > TimeSpan.Zero) await Task.Delay(pause);
            var (a, b) = (await first(), await second());
            if (i < 0) continue;
            firsts.Add(a);
            seconds.Add(b);
        }
        return (firsts, seconds);
    }
}
