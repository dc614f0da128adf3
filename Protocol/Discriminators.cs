using System.Collections.Concurrent;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SentryVibe.Protocol;

/// <summary>
/// The kebab-case <c>type</c> of a command or event, read from the <see cref="JsonDerivedTypeAttribute"/>s on
/// <see cref="RunnerCommand"/> and <see cref="ProjectEvent"/>: the one place Web and Broker learn a discriminator.
/// A type not registered there is bad input (<see cref="ArgumentException"/>, which the broker answers as a JSON-RPC error).
/// </summary>
public static class Discriminators
{
    private static readonly ConcurrentDictionary<Type, string> Cache = new();

    public static string Of(RunnerCommand command) => Of(command.GetType(), typeof(RunnerCommand));

    public static string Of(ProjectEvent e) => Of(e.GetType(), typeof(ProjectEvent));

    private static string Of(Type type, Type baseType) => Cache.GetOrAdd(type, t =>
        baseType.GetCustomAttributes<JsonDerivedTypeAttribute>().FirstOrDefault(a => a.DerivedType == t)?.TypeDiscriminator as string
        ?? throw new ArgumentException($"{t.Name} is not a registered {baseType.Name}."));

    public static string Serialize(RunnerCommand command) => JsonSerializer.Serialize(command, LinkProtocol.JsonOptions);

    public static string Serialize(ProjectEvent e) => JsonSerializer.Serialize(e, LinkProtocol.JsonOptions);
}
