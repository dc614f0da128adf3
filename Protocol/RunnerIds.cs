using System.Text;

namespace SentryVibe.Protocol;

/// <summary>
/// The one rule for runner ids, applied where a token is bound to an id (Web), where a Hello names one (broker) and
/// where a runner picks its default (the CLI). The id is also a folder name under <c>$SENTRYVIBE_HOME/runners</c>, so it
/// starts with a letter or digit ("." and ".." are never ids). See docs/runner-protocol.md.
/// </summary>
public static class RunnerIds
{
    public const int MaxLength = 100;

    /// <summary>What a bad id is told, on the wire and in problem+json alike.</summary>
    public const string Rule = "A runner id is 1-100 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.";

    public const string Fallback = "runner";

    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength || !char.IsAsciiLetterOrDigit(id[0])) return false;
        foreach (var c in id)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '-')) return false;
        }
        return true;
    }

    /// <summary>
    /// A valid id made from a display name or host name: lower case, runs of anything else become one '-', trimmed to
    /// <paramref name="maxLength"/>; <see cref="Fallback"/> when nothing usable is left.
    /// </summary>
    public static string FromName(string? name, int maxLength = MaxLength)
    {
        var sb = new StringBuilder(Math.Min(name?.Length ?? 0, maxLength));
        foreach (var ch in (name ?? "").Normalize(NormalizationForm.FormD))
        {
            if (sb.Length >= maxLength) break;
            var c = char.ToLowerInvariant(ch);
            if (char.IsAsciiLetterOrDigit(c) || (c is '.' or '_' && sb.Length > 0)) sb.Append(c);
            else if (System.Globalization.CharUnicodeInfo.GetUnicodeCategory(ch) == System.Globalization.UnicodeCategory.NonSpacingMark) continue;
            else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
        }
        var id = sb.ToString().TrimEnd('-', '.', '_');
        return IsValid(id) ? id : Fallback;
    }
}
