using System.Security.Cryptography;
using System.Text;

namespace SentryVibe.Web.Services;

/// <summary>Folder-safe project names: the runner uses the slug as the project's folder in the workspace.</summary>
public static class Slugs
{
    public const int MaxLength = 60;
    public const string Fallback = "project";

    /// <summary>Lowercase [a-z0-9-], no leading, trailing or doubled dashes, at most <see cref="MaxLength"/> characters.</summary>
    public static string From(string text, int maxLength = MaxLength)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var ch in text.Normalize(NormalizationForm.FormD))
        {
            var c = char.ToLowerInvariant(ch);
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9') sb.Append(c);
            else if (System.Globalization.CharUnicodeInfo.GetUnicodeCategory(ch) == System.Globalization.UnicodeCategory.NonSpacingMark) continue; // é → e
            else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
        }
        var slug = sb.ToString().Trim('-');
        if (slug.Length > maxLength)
        {
            // Cut at a word boundary when one is near, so "create-a-react-todo-app-wi" does not happen.
            var cut = slug.LastIndexOf('-', maxLength);
            slug = (cut >= maxLength / 2 ? slug[..cut] : slug[..maxLength]).Trim('-');
        }
        return slug.Length == 0 ? Fallback : slug;
    }

    /// <summary>
    /// The first free of <paramref name="baseSlug"/>, <c>-2</c>, <c>-3</c> … among <paramref name="taken"/>, the base
    /// shortened by <paramref name="shorten"/> (default <see cref="From"/>) to leave room for the suffix.
    /// </summary>
    public static string FirstFree(string baseSlug, IReadOnlySet<string> taken, int maxLength = MaxLength, Func<string, int, string>? shorten = null)
    {
        if (!taken.Contains(baseSlug)) return baseSlug;
        shorten ??= From;
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

    /// <summary>The relay host label: 128 random bits, lowercase hex, so previews cannot be guessed.</summary>
    public static string NewPreviewId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
