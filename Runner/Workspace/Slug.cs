using System.Text;

namespace SentryVibe.Runner.Workspace;

/// <summary>Project folder names: lowercase letters, digits and single hyphens, at most 60 characters.</summary>
public static class Slug
{
    public const int MaxLength = 60;

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

    /// <summary>Turns any text ("My Todo App!") into a slug ("my-todo-app").</summary>
    public static string From(string text)
    {
        var builder = new StringBuilder();
        foreach (var c in text.Normalize(NormalizationForm.FormD).ToLowerInvariant())
        {
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9')
            {
                builder.Append(c);
            }
            else if (builder.Length > 0 && builder[^1] != '-' && char.GetUnicodeCategory(c) != System.Globalization.UnicodeCategory.NonSpacingMark)
            {
                builder.Append('-');
            }
        }
        var slug = builder.ToString().Trim('-');
        if (slug.Length > MaxLength)
        {
            slug = slug[..MaxLength].TrimEnd('-');
        }
        return slug.Length == 0 ? "project" : slug;
    }

    private static string Truncate(string s) => s.Length > 80 ? s[..80] + "…" : s;
}
