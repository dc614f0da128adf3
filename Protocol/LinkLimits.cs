namespace SentryVibe.Protocol;

/// <summary>
/// The bounds of what a runner may announce in its Hello, declared once: the broker refuses a Hello over any of
/// them (JSON-RPC error naming the field, then the link closes), and a runner may check its own before sending.
/// Generous for real runners (a hostname is at most 255 characters by DNS; the runner sends three capabilities and
/// a handful of agents). See docs/runner-protocol.md.
/// </summary>
public static class LinkLimits
{
    public const int RunnerIdLength = 100;
    public const int VersionLength = 64;
    public const int NameLength = 200;
    public const int HostnameLength = 255;
    public const int PreviewProviderLength = 32;

    /// <summary>Most entries in <see cref="RunnerHello.Capabilities"/> and in <see cref="RunnerHello.Agents"/>.</summary>
    public const int ListCount = 32;

    /// <summary>Longest entry of <see cref="RunnerHello.Capabilities"/> or <see cref="RunnerHello.Agents"/>.</summary>
    public const int ListItemLength = 64;

    /// <summary>The first field of <paramref name="hello"/> over its bound, as a sentence that names it; null when all fit.</summary>
    public static string? Check(RunnerHello hello)
    {
        ArgumentNullException.ThrowIfNull(hello);
        return Length(nameof(RunnerHello.RunnerId), hello.RunnerId, RunnerIdLength)
            ?? Length(nameof(RunnerHello.Version), hello.Version, VersionLength)
            ?? Length(nameof(RunnerHello.Name), hello.Name, NameLength)
            ?? Length(nameof(RunnerHello.Hostname), hello.Hostname, HostnameLength)
            ?? Length(nameof(RunnerHello.PreviewProvider), hello.PreviewProvider, PreviewProviderLength)
            ?? List(nameof(RunnerHello.Capabilities), hello.Capabilities)
            ?? List(nameof(RunnerHello.Agents), hello.Agents);
    }

    private static string? Length(string field, string? value, int max) =>
        value is { Length: var length } && length > max ? $"Hello field {field} is {length} characters; at most {max} are allowed." : null;

    private static string? List(string field, IReadOnlyList<string>? values)
    {
        if (values is null) return null;
        if (values.Count > ListCount) return $"Hello field {field} has {values.Count} entries; at most {ListCount} are allowed.";
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i] is { Length: > ListItemLength } item)
            {
                return $"Hello field {field}[{i}] is {item.Length} characters; at most {ListItemLength} are allowed.";
            }
        }
        return null;
    }
}
