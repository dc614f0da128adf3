using SentryVibe.Protocol;

namespace SentryVibe.Web.Services;

/// <summary>Names that must be unique in the database (project slugs, runner ids); the slug rule itself is <see cref="Slugs"/>.</summary>
public static class UniqueNames
{
    /// <summary>
    /// The first free of <paramref name="baseSlug"/>, <c>-2</c>, <c>-3</c> … among <paramref name="taken"/>, the base
    /// shortened by <paramref name="shorten"/> (default <see cref="Slugs.From"/>) to leave room for the suffix.
    /// </summary>
    public static string FirstFree(string baseSlug, IReadOnlySet<string> taken, int maxLength = Slugs.MaxLength, Func<string, int, string>? shorten = null)
    {
        if (!taken.Contains(baseSlug)) return baseSlug;
        shorten ??= Slugs.From;
        for (var n = 2; ; n++)
        {
            var suffix = "-" + n;
            var candidate = shorten(baseSlug, maxLength - suffix.Length) + suffix;
            if (!taken.Contains(candidate)) return candidate;
        }
    }

    /// <summary>A readable default name: the prompt's first line, shortened.</summary>
    public static string NameFrom(string prompt)
    {
        var line = prompt.Split('\n', 2)[0].Trim();
        return line.Length <= 80 ? line : line[..79].TrimEnd() + "…";
    }
}
