using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Link;

/// <summary>Settings of the runner link (section "Broker").</summary>
public sealed class BrokerOptions
{
    public const string Section = "Broker";

    /// <summary>This replica's id in runners.BrokerId and commands.DeliveredBy; default host-pid-random.</summary>
    public string? Id { get; set; }

    /// <summary>Host suffix of preview URLs; default <c>preview.localhost:&lt;own http port&gt;</c>.</summary>
    public string? PreviewDomain { get; set; }

    /// <summary>
    /// Scheme of the relay preview URLs the broker builds (http or https); default the scheme the runner's link came in
    /// with (X-Forwarded-Proto behind a TLS-terminating proxy).
    /// </summary>
    public string? PreviewScheme { get; set; }

    /// <summary>Address other replicas reach this one at; default the first listening address.</summary>
    public string? InternalAddress { get; set; }

    /// <summary>The seed's shared runner secret (<c>RUNNER_SHARED_SECRET</c>); per-runner tokens work beside it.</summary>
    public string? SharedSecret { get; set; }

    /// <summary>Events one PublishEvents call may hold; told to the runner in its Hello reply.</summary>
    public int MaxEventsPerBatch { get; set; } = LinkProtocol.EventsPerBatch;

    /// <summary>
    /// PublishEvents calls a runner may make per second (token bucket, burst twice as big). Told to the runner in its
    /// Hello reply, which spaces its calls by it; only a runner that ignores it is refused.
    /// </summary>
    public int PublishCallsPerSecond { get; set; } = LinkProtocol.DefaultPublishCallsPerSecond;

    /// <summary>Heartbeat calls a runner may make per second (burst 10).</summary>
    public int HeartbeatsPerSecond { get; set; } = 2;

    /// <summary>Preview lookups (found or not) kept for a second; past this many entries the misses and the oldest go first.</summary>
    public int PreviewTargetCacheSize { get; set; } = 4096;

    /// <summary>
    /// Preview connections (a runner socket each) open at once for one preview. A page load takes about 7 (a browser opens at
    /// most 6 HTTP/1.1 connections per host, plus the HMR WebSocket); the rest is room for several tabs.
    /// </summary>
    public int MaxPreviewChannelsPerPreview { get; set; } = 64;

    /// <summary>Preview connections (a runner socket each) open at once to one runner, all its previews together.</summary>
    public int MaxPreviewChannelsPerRunner { get; set; } = 256;

    /// <summary>
    /// Spare preview sockets a runner may hold open to this broker for its next preview connections (docs/runner-protocol.md,
    /// "Spare preview sockets"); 0 turns them off. A runner dials them only once its previews are in use.
    /// </summary>
    public int PreviewSparesPerRunner { get; set; } = 4;

    /// <summary>A spare preview socket not taken for this long is closed; the runner dials spares again on its next preview connection.</summary>
    public TimeSpan PreviewSpareIdle { get; set; } = TimeSpan.FromMinutes(2);

    public TimeSpan HelloTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Tests only: holds the error reply of a refused Hello this long before it is flushed (a slow writer), to prove the
    /// link closes after the reply rather than after a fixed delay. Zero in production.
    /// </summary>
    public TimeSpan RefusalReplyDelay { get; set; } = TimeSpan.Zero;

    /// <summary>How long the broker waits for a runner to acknowledge a command before trying again on its next connection.</summary>
    public TimeSpan CommandAckTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>Who this replica is: id, internal address and preview domain (the latter two known once Kestrel listens).</summary>
public sealed class BrokerIdentity(IOptions<BrokerOptions> options, IServer server)
{
    public string Id { get; } = options.Value.Id is { Length: > 0 } id
        ? id
        : $"{Environment.MachineName.ToLowerInvariant()}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";

    public string InternalAddress => options.Value.InternalAddress ?? ListeningAddress() ?? "";

    public string PreviewDomain => options.Value.PreviewDomain is { Length: > 0 } domain
        ? domain
        : $"preview.localhost:{(ListeningAddress() is { } a && Uri.TryCreate(a, UriKind.Absolute, out var uri) ? uri.Port : 80)}";

    private string? ListeningAddress()
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault(a => a.StartsWith("http://", StringComparison.OrdinalIgnoreCase)) ?? addresses?.FirstOrDefault();
        if (first is null) return null;
        // Wildcard bindings are not addresses another replica can dial: name the host instead.
        return first.Replace("://+", "://" + Environment.MachineName)
            .Replace("://*", "://" + Environment.MachineName)
            .Replace("://0.0.0.0", "://" + Environment.MachineName)
            .Replace("://[::]", "://" + Environment.MachineName);
    }
}
