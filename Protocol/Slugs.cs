using System.Globalization;
using System.Text;

namespace SentryVibe.Protocol;

/// <summary>
/// The one rule for project slugs: Web makes them from a name or prompt, and the runner uses one as the project's
/// folder in its workspace and refuses any other (see docs/runner-protocol.md). Lowercase letters, digits and single
/// hyphens, not at either end, at most <see cref="MaxLength"/> characters.
/// </summary>
public static class Slugs
{
    public const int MaxLength = 60;
    public const string Fallback = "project";

    public static bool IsValid(string? slug) =>
        !string.IsNullOrEmpty(slug)
        && slug.Length <= MaxLength
        && slug.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-')
        && slug[0] != '-' && slug[^1] != '-';

    /// <summary>Why <paramref name="slug"/> is not valid, or null when it is.</summary>
    public static string? Problem(string? slug) => slug switch
    {
        null or "" => "The project slug is empty.",
        { Length: > MaxLength } => $"The project slug '{Truncate(slug)}' is longer than {MaxLength} characters.",
        _ when !IsValid(slug) => $"The project slug '{Truncate(slug)}' may contain only lowercase letters, digits and hyphens (not at either end).",
        _ => null,
    };

    /// <summary>
    /// Turns any text ("My Todo App!", "Café") into a valid slug ("my-todo-app", "cafe") of at most
    /// <paramref name="maxLength"/> characters, or <see cref="Fallback"/> when nothing is left.
    /// </summary>
    public static string From(string text, int maxLength = MaxLength)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var ch in text.Normalize(NormalizationForm.FormD))
        {
            var c = char.ToLowerInvariant(ch);
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9') sb.Append(c);
            else if (CharUnicodeInfo.GetUnicodeCategory(ch) == UnicodeCategory.NonSpacingMark) continue; // é → e
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

    private static string Truncate(string s) => s.Length > 80 ? s[..80] + "…" : s;
}
