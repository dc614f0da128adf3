// Reads "the server is up on port N" out of dev server output, as a fallback to probing the port we chose.
using System.Globalization;
using System.Text.RegularExpressions;

namespace SentryVibe.Runner.DevServers;

public static partial class OutputPortDetector
{
    /// <summary>The port a line announces, or null. Only loopback/any addresses count (Vite's "Network:" lines do not).</summary>
    public static int? Detect(string line)
    {
        foreach (var regex in new[] { LocalUrl(), Listening(), NextStarted() })
        {
            var match = regex.Match(line);
            if (match.Success
                && int.TryParse(match.Groups["port"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                && port is > 0 and < 65536)
            {
                return port;
            }
        }
        return null;
    }

    /// <summary>Removes terminal colour and cursor sequences (dev servers colour their banners).</summary>
    public static string StripAnsi(string line) => Ansi().Replace(line, "");

    // Vite "➜  Local:   http://localhost:5173/", Next "- Local: http://localhost:3000", Astro "┃ Local    http://localhost:4321/",
    // plain Node "Server running at http://127.0.0.1:3000/".
    [GeneratedRegex(@"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1?\]|\[::\]):(?<port>\d{2,5})\b", RegexOptions.IgnoreCase)]
    private static partial Regex LocalUrl();

    // "listening on port 3000", "Listening on :3000", "listening at 3000"
    [GeneratedRegex(@"\blistening\s+(?:on|at)\s+(?:port\s+)?:?(?<port>\d{2,5})\b", RegexOptions.IgnoreCase)]
    private static partial Regex Listening();

    // Next 12/13: "ready - started server on 0.0.0.0:3000, url: http://localhost:3000"
    [GeneratedRegex(@"started server on\s+[^\s,]*?:(?<port>\d{2,5})\b", RegexOptions.IgnoreCase)]
    private static partial Regex NextStarted();

    [GeneratedRegex(@"\x1B(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1B]*(?:\x07|\x1B\\)|[@-Z\\-_])")]
    private static partial Regex Ansi();
}
