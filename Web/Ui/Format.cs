using System.Globalization;

namespace SentryVibe.Web.Ui;

/// <summary>Human wording for times and amounts on the pages.</summary>
public static class Format
{
    public static string Ago(DateTimeOffset? at, DateTimeOffset now)
    {
        if (at is not { } t) return "never";
        var span = now - t;
        if (span < TimeSpan.FromSeconds(10)) return "just now";
        if (span < TimeSpan.FromMinutes(1)) return $"{(int)span.TotalSeconds} s ago";
        if (span < TimeSpan.FromHours(1)) return $"{(int)span.TotalMinutes} min ago";
        if (span < TimeSpan.FromDays(1)) return $"{(int)span.TotalHours} h ago";
        return t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    }

    public static string Time(DateTimeOffset at) => at.ToLocalTime().ToString("HH:mm:ss", CultureInfo.InvariantCulture);

    public static string Tokens(long n) => n switch
    {
        < 1000 => n.ToString(CultureInfo.InvariantCulture),
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{n / 1000.0:0.#}k"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{n / 1_000_000.0:0.#}M"),
    };
}
