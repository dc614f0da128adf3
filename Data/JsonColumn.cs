using System.Text.Json;
using SentryVibe.Protocol;

namespace SentryVibe.Data;

/// <summary>
/// How a jsonb column that holds a .NET value (a project's todos and dev server, a runner's capabilities and agents) is
/// written and read: by EF Core's value converters in Web and by the broker's plain SQL (<see cref="ProjectRows"/>) alike.
/// </summary>
public static class JsonColumn
{
    public static string Write<T>(T value) => JsonSerializer.Serialize(value, LinkProtocol.JsonOptions);

    /// <summary>The value, or a new one where the column holds JSON <c>null</c>.</summary>
    public static T Read<T>(string json) where T : new() => JsonSerializer.Deserialize<T>(json, LinkProtocol.JsonOptions) ?? new T();
}
