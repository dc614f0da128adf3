// The transport both ends of the runner link share: JSON-RPC on the WebSocket, one message per WebSocket message
// (LinkSocket). One place, so broker and runner cannot drift apart.
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using StreamJsonRpc;

namespace SentryVibe.Protocol;

/// <summary>JSON-RPC error codes of the link (application range, outside the reserved -32768..-32000).</summary>
public static class LinkErrorCodes
{
    public const int ProtocolMismatch = -31001;
    public const int HelloRequired = -31002;
    public const int RateLimited = -31003;
    public const int InvalidRequest = -31004;
    public const int Unavailable = -31005;

    /// <summary>The token may not link as the runner id the Hello names; retrying cannot help (docs/runner-protocol.md).</summary>
    public const int IdentityRefused = -31006;
}

/// <summary>Close reasons the broker sends, so a runner can tell the user why its link ended.</summary>
public static class LinkCloseReasons
{
    public const string MessageTooBig = "message exceeds the link's size limit";
    public const string ProtocolMismatch = "protocol version not supported";
    public const string Replaced = "replaced by a newer connection of the same runner";
    public const string HelloTimeout = "no Hello within the allowed time";
    public const string HeartbeatTimeout = "no heartbeat within the allowed time";
    public const string MalformedInput = "malformed input";
    public const string ShuttingDown = "broker shutting down";
    public const string IdentityRefused = "runner token not valid for this runner id";
    public const string TokenRevoked = "runner token revoked";
    public const string HelloOverLimits = "Hello field over its limit";
    public const string NotJsonRpc = "not a JSON-RPC message (runners before link protocol 2 spoke a mux; update the runner)";
}

public static class LinkTransport
{
    private static readonly JsonSerializerOptions RpcJsonOptions = CreateRpcJsonOptions();

    private static JsonSerializerOptions CreateRpcJsonOptions()
    {
        var options = new JsonSerializerOptions(LinkProtocol.JsonOptions);
        options.Converters.Insert(0, new SharedContractMetadata());
        return options;
    }

    /// <summary>
    /// Creates (not yet listening) the JSON-RPC connection on a link's WebSocket: one message per binary WebSocket
    /// message, System.Text.Json with the wire's serializer options, and any message above
    /// <paramref name="maxMessageBytes"/> refused (the socket closes with 1009).
    /// </summary>
    public static JsonRpc CreateRpc(WebSocket socket, int maxMessageBytes = LinkProtocol.MaxMessageBytes) =>
        CreateRpc(new LinkSocket(socket, maxMessageBytes));

    /// <summary>The same connection over a message handler of the caller's (the broker's watches its replies go out).</summary>
    public static JsonRpc CreateRpc(IJsonRpcMessageHandler handler) => new(handler)
    {
        CancelLocallyInvokedMethodsWhenConnectionIsClosed = true,
        TraceSource = RpcTrace,
    };

    /// <summary>
    /// One trace source for every link's JSON-RPC, with StreamJsonRpc's own name and levels. Each connection would
    /// otherwise build its own on first use (a switch, a listener, two hashtables, registrations in two process-wide
    /// lists): about 1 KB that an idle link held for its lifetime (docs/architecture.md, decision 4).
    /// </summary>
    private static readonly TraceSource RpcTrace = new(nameof(JsonRpc), SourceLevels.ActivityTracing | SourceLevels.Warning);

    /// <summary>
    /// The runner's heartbeat as the broker's Hello reply asks for it (docs/runner-protocol.md, "Liveness"): empty
    /// messages to a broker that answers them (<see cref="LinkSocket.HeartbeatAsync"/>), else a
    /// <see cref="IBrokerService.HeartbeatAsync"/> call every interval. Either way it throws
    /// <see cref="TimeoutException"/> once the broker has left a heartbeat unanswered for two intervals.
    /// </summary>
    public static Task RunnerHeartbeatAsync(LinkSocket link, IBrokerService broker, HelloReply reply, Func<Heartbeat> heartbeat,
        CancellationToken cancellationToken)
    {
        var interval = TimeSpan.FromSeconds(Math.Clamp(reply.HeartbeatSeconds, 1, 60));
        return reply.AnswersEmptyHeartbeats
            ? link.HeartbeatAsync(interval, cancellationToken)
            : CallHeartbeatAsync(broker, interval, heartbeat, cancellationToken);
    }

    private static async Task CallHeartbeatAsync(IBrokerService broker, TimeSpan interval, Func<Heartbeat> heartbeat, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(interval * 2);
            try
            {
                await broker.HeartbeatAsync(heartbeat(), timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException("The broker did not answer a heartbeat in time.");
            }
        }
    }

    /// <summary>
    /// The link's formatter. It copies the options per connection (and System.Text.Json caches type metadata per
    /// options instance), so the contract types are serialized through <see cref="SharedContractMetadata"/>, whose
    /// metadata is built once per process.
    /// </summary>
    public static SystemTextJsonFormatter CreateFormatter() => new() { JsonSerializerOptions = RpcJsonOptions };
}

