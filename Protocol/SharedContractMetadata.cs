using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace SentryVibe.Protocol;

/// <summary>
/// Serializes the link's own contract types (<c>RunnerHello</c>, <c>EventBatch</c>, <c>CommandEnvelope</c>, …) with one
/// options instance shared by every link, so their type metadata is built once per process instead of once per link.
/// </summary>
/// <remarks>
/// StreamJsonRpc's formatter copies the options it is given and adds converters bound to its connection, so each link
/// has an options instance of its own, and System.Text.Json caches type metadata per instance: about 14 KB per link
/// for the handful of types a link uses (property and parameter infos of each record), 14 MB on a broker holding a
/// thousand idle runners (docs/architecture.md, decision 4). With this converter in the options, a link's own cache
/// holds only one small converter per contract type; the metadata lives in one shared instance with the wire's settings.
/// </remarks>
internal sealed class SharedContractMetadata : JsonConverterFactory
{
    private static readonly JsonSerializerOptions Shared = CreateShared();

    private static JsonSerializerOptions CreateShared()
    {
        var options = LinkProtocol.CreateJsonOptions();
        options.TypeInfoResolver = new DefaultJsonTypeInfoResolver();
        options.MakeReadOnly();
        return options;
    }

    public override bool CanConvert(Type typeToConvert) =>
        typeToConvert.Assembly == typeof(SharedContractMetadata).Assembly && !typeToConvert.IsEnum && !typeToConvert.IsInterface;

    public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
        (JsonConverter)Activator.CreateInstance(typeof(Delegating<>).MakeGenericType(typeToConvert), Shared.GetTypeInfo(typeToConvert))!;

    private sealed class Delegating<T>(JsonTypeInfo info) : JsonConverter<T>
    {
        private readonly JsonTypeInfo<T> _info = (JsonTypeInfo<T>)info;

        public override T? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            JsonSerializer.Deserialize(ref reader, _info);

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, value, _info);
    }
}
