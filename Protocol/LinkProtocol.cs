using System.Text.Json;
using System.Text.Json.Serialization;

namespace SentryVibe.Protocol;

/// <summary>Constants of the runner link: path, channel names, version, limits.</summary>
public static class LinkProtocol
{
    /// <summary>Bumped on breaking changes; additive changes keep it (contracts evolve by optional members).</summary>
    public const int Version = 2;

    public const string RunnerPath = "/runner";

    /// <summary>The original (TypeScript) runner's link path: its broker URLs end in <c>/socket</c>.</summary>
    public const string SeedRunnerPath = "/socket";

    /// <summary>
    /// The path to link to for the path a user configured: none means <see cref="RunnerPath"/>, and the seed's
    /// <c>/socket</c> (also behind a path prefix, <c>/sv/socket</c>) means <see cref="RunnerPath"/> in its place, so a
    /// seed-era broker URL works unchanged (docs/runner-protocol.md). Anything else is kept as given.
    /// </summary>
    public static string LinkPathFor(string path)
    {
        var trimmed = path.TrimEnd('/');
        if (trimmed.Length == 0) return RunnerPath;
        return trimmed.EndsWith(SeedRunnerPath, StringComparison.OrdinalIgnoreCase)
            ? trimmed[..^SeedRunnerPath.Length] + RunnerPath
            : path;
    }

    /// <summary>The segment under a link's path where a runner dials preview sockets (<see cref="PreviewSocketUri"/>).</summary>
    public const string PreviewSocketSegment = "/preview";

    /// <summary>
    /// Where a runner dials the socket of one preview connection, under its link's URL: <c>&lt;link&gt;/preview/&lt;ticket&gt;</c>
    /// (docs/runner-protocol.md, "Preview relay").
    /// </summary>
    public static Uri PreviewSocketUri(Uri link, string ticket) =>
        new UriBuilder(link) { Path = link.AbsolutePath.TrimEnd('/') + PreviewSocketSegment + "/" + Uri.EscapeDataString(ticket), Query = "" }.Uri;

    /// <summary>A preview ticket (or a spare key) as the broker makes them: 43 base64url characters, its replica's tag and random ones.</summary>
    public static bool IsPreviewTicket(string? ticket) =>
        ticket is { Length: 43 } && ticket.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>Largest single WebSocket message the broker accepts; a bigger one closes that link only.</summary>
    public const int MaxMessageBytes = 8 * 1024 * 1024;

    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// PublishEvents calls a runner may make per second unless the broker's Hello reply says otherwise (the broker's
    /// <c>Broker:PublishCallsPerSecond</c>; it allows bursts of twice as many). A runner spaces its calls by the
    /// broker's figure, so events that arrive meanwhile share the next call instead of being refused.
    /// </summary>
    public const int DefaultPublishCallsPerSecond = 100;

    /// <summary>
    /// PublishEvents calls a runner may have unanswered at once when the broker's Hello reply allows it: while the
    /// broker stores one batch, the next is already on its way. The broker takes a link's batches strictly in the order
    /// they arrived, and refuses every batch sent behind one that failed until the runner sends again from the failed
    /// one, so the committed seq never passes an event that was not stored.
    /// </summary>
    public const int BatchesInFlight = 2;

    /// <summary>
    /// Events a runner puts in one PublishEvents call at most (and 2 MB of them): the broker's default limit, told in
    /// <see cref="HelloReply.EventsPerBatch"/>. A batch's round trips and commit are paid once however many events it
    /// holds; 4,000 instead of 1,000 took the bench's sustained rate up by a tenth to a quarter. A broker that does not
    /// say takes <see cref="EventsPerBatchUnstated"/>.
    /// </summary>
    public const int EventsPerBatch = 4000;

    /// <summary>The limit of a broker whose Hello reply does not state one: brokers took 1,000 before they said so.</summary>
    public const int EventsPerBatchUnstated = 1000;

    /// <summary>A runner not heard from for this long is offline.</summary>
    public static readonly TimeSpan OfflineAfter = TimeSpan.FromSeconds(15);

    /// <summary>The one serializer configuration of the wire, the event log and the public API.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions();

    public static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            AllowOutOfOrderMetadataProperties = true,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower));
        return options;
    }
}

/// <summary>Environment names of the seed that keep working (docs/architecture.md, decision 8).</summary>
public static class SeedEnvironment
{
    public const string BrokerUrl = "RUNNER_BROKER_URL";
    public const string SharedSecret = "RUNNER_SHARED_SECRET";
    public const string RunnerId = "RUNNER_ID";
    public const string WorkspaceRoot = "WORKSPACE_ROOT";
    public const string DatabaseUrl = "DATABASE_URL";
    public const string Port = "PORT";
    public const string SentryVibeHome = "SENTRYVIBE_HOME";
}
