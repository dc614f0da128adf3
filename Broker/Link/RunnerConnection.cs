using System.Net.WebSockets;
using SentryVibe.Broker.Previews;
using SentryVibe.Protocol;
using StreamJsonRpc;

namespace SentryVibe.Broker.Link;

/// <summary>Where a link's Hello stands; held as an int in <see cref="RunnerConnection"/> for Interlocked.</summary>
internal enum HelloState { None, InProgress, Done, Refused }

/// <summary>
/// One runner's live link on this replica: JSON-RPC on the WebSocket (<see cref="LinkSocket"/>), its Hello deadline, liveness and
/// teardown. What the runner calls is <see cref="BrokerService"/>; commands go out through <see cref="CommandDelivery"/>;
/// preview channels open through <see cref="RunnerPreviewChannels"/>. Anything wrong on this link closes this link only.
/// </summary>
public sealed class RunnerConnection : IAsyncDisposable
{
    private readonly LinkMessageHandler _link;
    private readonly LinkServices _services;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _closed = new();
    private readonly BrokerService _target;
    private readonly CommandDelivery _delivery;
    private JsonRpc? _rpc;
    private bool _malformed; // the runner sent something that is not the link's JSON-RPC
    private int _helloState; // a HelloState
    private long _lastHeard = Environment.TickCount64; // anything from the runner: its calls, heartbeats and answers to pings
    private long _lastSpoke = Environment.TickCount64; // what the runner sent of its own accord: calls and heartbeats

    public RunnerConnection(WebSocket socket, LinkServices services, string? remote, RunnerCredential? credential = null, string previewScheme = "http",
        byte[]? tokenHash = null)
    {
        TokenHash = tokenHash;
        _services = services;
        Remote = remote;
        Credential = credential ?? RunnerCredential.SharedSecret;
        _logger = services.Loggers.CreateLogger<RunnerConnection>();
        _target = new BrokerService(this, services, previewScheme);
        _link = new LinkMessageHandler(socket, _target.HeartbeatMessage, services.Options.RefusalReplyDelay);
        _delivery = new CommandDelivery(this, services);
        Previews = new RunnerPreviewChannels(this, services);
    }

    public Guid ConnectionId { get; } = Guid.NewGuid();

    /// <summary>What the link's token proved: the per-runner token it was made with (closed when that is revoked), or the shared secret.</summary>
    public RunnerCredential Credential { get; }

    /// <summary>The stored form of the token this link was opened with: the one its preview sockets must present.</summary>
    internal byte[]? TokenHash { get; }

    /// <summary>The runner's address as the socket saw it, for logs.</summary>
    public string? Remote { get; }

    /// <summary>Set by a successful Hello.</summary>
    public string? RunnerId { get; private set; }

    /// <summary>When the Hello was recorded, on the database's clock.</summary>
    public DateTimeOffset ConnectedAt { get; private set; }

    /// <summary>The runner's side of the contract, once the rpc channel is open.</summary>
    public IRunnerService? Runner { get; private set; }

    /// <summary>Cancelled when the link closes.</summary>
    internal CancellationToken Closed => _closed.Token;

    /// <summary>The preview channels open over this link.</summary>
    public RunnerPreviewChannels Previews { get; }

    public TimeSpan SinceHeard => TimeSpan.FromMilliseconds(Environment.TickCount64 - Interlocked.Read(ref _lastHeard));

    /// <summary>Since the runner last sent something of its own accord (a heartbeat or a call); answers to pings do not count.</summary>
    public TimeSpan SinceSpoke => TimeSpan.FromMilliseconds(Environment.TickCount64 - Interlocked.Read(ref _lastSpoke));

    public bool IsReady => Hello == HelloState.Done && !_closed.IsCancellationRequested;

    internal HelloState Hello => (HelloState)Volatile.Read(ref _helloState);

    internal bool TryMoveHello(HelloState from, HelloState to) =>
        Interlocked.CompareExchange(ref _helloState, (int)to, (int)from) == (int)from;

    internal void SetHello(HelloState state) => Volatile.Write(ref _helloState, (int)state);

    public async Task RunAsync(CancellationToken aborted)
    {
        // The request's end (the runner's socket gone, the broker stopping) closes the link as our own close does. One
        // registration instead of a linked source: what an idle link holds, it holds for hours (docs/architecture.md, decision 4).
        using var onAborted = aborted.UnsafeRegister(static closed => ((CancellationTokenSource)closed!).Cancel(), _closed);
        var ct = _closed.Token;
        (WebSocketCloseStatus Status, string Reason)? close = null;
        try
        {
            _rpc = LinkTransport.CreateRpc(_link);
            // Calls start in the order they arrived (each runs alone up to its first await, then the next starts), so a
            // runner's pipelined event batches queue up in the order it sent them (BrokerService.PublishEventsAsync).
            _rpc.SynchronizationContext = new Microsoft.VisualStudio.Threading.NonConcurrentSynchronizationContext(sticky: false);
            _rpc.AddLocalRpcTarget<IBrokerService>(_target, null);
            Runner = _rpc.Attach<IRunnerService>();
            _rpc.Disconnected += (_, e) =>
            {
                if (e.Reason is DisconnectedReason.ParseError or DisconnectedReason.RemoteProtocolViolation or DisconnectedReason.StreamError)
                {
                    _malformed = true;
                    _logger.LogInformation("Link of {Runner} ({Remote}) ended: {Reason} {Description}", RunnerId ?? "?", Remote, e.Reason, e.Description);
                }
            };
            _rpc.StartListening();
            _ = EnforceHelloDeadlineAsync(ct);

            await Task.WhenAny(_rpc.Completion, Task.Delay(Timeout.Infinite, ct));
            if (_malformed || _rpc.Completion.IsFaulted) close = (WebSocketCloseStatus.ProtocolError, LinkCloseReasons.MalformedInput);
        }
        catch (OperationCanceledException)
        {
            // Our own decision (a close already sent with its reason), or the request aborted.
        }
        finally
        {
            await TearDownAsync(close);
        }
    }

    /// <summary>
    /// The Hello was accepted and recorded: this link becomes the runner's current one on this replica (closing the one
    /// it replaces) and command delivery starts.
    /// </summary>
    internal void Accept(string runnerId, DateTimeOffset connectedAt)
    {
        ConnectedAt = connectedAt;
        RunnerId = runnerId;
        if (_services.Registry.Register(runnerId, this) is { } previous)
        {
            _ = previous.CloseAsync(WebSocketCloseStatus.NormalClosure, LinkCloseReasons.Replaced);
        }
        SetHello(HelloState.Done);
        _delivery.Start(runnerId, _closed.Token);
    }

    /// <summary>Closes the link with a reason the runner sees in the close frame.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        await _link.CloseAsync(status, reason);
        await _closed.CancelAsync();
    }

    /// <summary>How long a refused Hello's link stays open at most waiting for its error reply to be written.</summary>
    internal static readonly TimeSpan RefusalReplyTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Closes the link once the error reply to the Hello being refused has been written and flushed into the link, so
    /// the runner reads the JSON-RPC error before the close frame; called before the Hello throws. Bounded by
    /// <see cref="RefusalReplyTimeout"/>: a reply that never goes out cannot keep a refused link open.
    /// </summary>
    internal async Task CloseAfterReplyAsync(WebSocketCloseStatus status, string reason)
    {
        // Sent is on the wire: the link writes each message straight to the socket.
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        timeout.CancelAfter(RefusalReplyTimeout);
        try
        {
            await _link.HelloErrorSentAsync().WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // Closed anyway: the reply did not go out in time, or the link is already closing.
        }
        await CloseAsync(status, reason);
    }

    /// <summary>Wakes the delivery loop (a command was queued for this runner).</summary>
    public void WakeDelivery() => _delivery.Wake();

    /// <summary>The runner sent a heartbeat or a call.</summary>
    public void Heard()
    {
        var now = Environment.TickCount64;
        Interlocked.Exchange(ref _lastSpoke, now);
        Interlocked.Exchange(ref _lastHeard, now);
    }

    /// <summary>The broker's own heartbeat to the runner; an answer counts as hearing from it (not as its speaking).</summary>
    public async Task<bool> PingAsync(TimeSpan timeout)
    {
        if (Runner is null || !IsReady) return false;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        cts.CancelAfter(timeout);
        try
        {
            await Runner.HeartbeatAsync(new Heartbeat(DateTimeOffset.UtcNow), cts.Token);
            Interlocked.Exchange(ref _lastHeard, Environment.TickCount64);
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionLostException or ObjectDisposedException or RemoteInvocationException)
        {
            return false;
        }
    }

    private async Task EnforceHelloDeadlineAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(_services.Options.HelloTimeout, ct);
            if (Hello != HelloState.Done) await CloseAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HelloTimeout);
        }
        catch (OperationCanceledException) { }
    }

    private async Task TearDownAsync((WebSocketCloseStatus Status, string Reason)? close)
    {
        await _closed.CancelAsync();
        if (RunnerId is { } runnerId && _services.Registry.Remove(runnerId, this))
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await _services.Runners.MarkOfflineAsync(runnerId, timeout.Token);
            }
            catch (Exception e) when (DatabaseFailures.Is(e) || e is OperationCanceledException)
            {
                // The sweeper marks it offline once LastSeenAt is old enough.
                _logger.LogWarning("Could not mark runner {Runner} offline: {Message}", runnerId, e.Message);
            }
            _logger.LogInformation("Runner {Runner} disconnected{Reason}", runnerId, close is null ? "" : $" ({close.Value.Reason})");
        }

        if (_link.Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await _link.CloseAsync(close?.Status ?? WebSocketCloseStatus.NormalClosure, close?.Reason ?? "link closed");
        }
        await DrainUntilClosedAsync();
        await _delivery.StoppedAsync(TimeSpan.FromSeconds(5));
    }

    // After our close frame, keep reading (and discarding) until the peer answers or a moment passes: closing a socket
    // with unread input sends a TCP reset, and a reset makes the peer's kernel drop the close frame we just sent.
    private async Task DrainUntilClosedAsync()
    {
        var socket = _link.Socket;
        if (socket.State != WebSocketState.CloseSent) return;
        var scratch = new byte[64 * 1024];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            while (socket.State == WebSocketState.CloseSent)
            {
                var result = await socket.ReceiveAsync(scratch, timeout.Token);
                if (result.MessageType == WebSocketMessageType.Close) break;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException
                                   or InvalidOperationException)
        {
            // InvalidOperationException: the link is still reading; it will see the close itself.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _rpc?.Dispose();
        await _link.DisposeAsync();
        _target.Dispose();
        _closed.Dispose();
    }
}
