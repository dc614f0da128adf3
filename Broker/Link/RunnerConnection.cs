using System.Diagnostics;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using System.Threading.RateLimiting;
using Nerdbank.Streams;
using Npgsql;
using SentryVibe.Broker.Previews;
using SentryVibe.Protocol;
using StreamJsonRpc;

namespace SentryVibe.Broker.Link;

/// <summary>
/// One runner's live link on this replica: WebSocket → mux → "rpc" channel, the runner's Hello, command delivery to
/// it, and its calls in (<see cref="BrokerService"/>). Anything wrong on this link closes this link only.
/// </summary>
public sealed class RunnerConnection : IAsyncDisposable
{
    private readonly WebSocketLinkStream _stream;
    private readonly LinkServices _services;
    private readonly ILogger _logger;
    private readonly string? _remote;
    private readonly string _previewScheme;
    private readonly CancellationTokenSource _closed = new();
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly TokenBucketRateLimiter _publishLimiter;
    private readonly TokenBucketRateLimiter _heartbeatLimiter;
    private MultiplexingStream? _mux;
    private JsonRpc? _rpc;
    private int _helloState; // a HelloState, held as an int for Interlocked
    private long _lastHeard = Environment.TickCount64;
    private Task _delivery = Task.CompletedTask;
    private long _committedSeq;
    private int _previewChannels;

    public RunnerConnection(WebSocket socket, LinkServices services, string? remote, RunnerCredential? credential = null, string previewScheme = "http")
    {
        _services = services;
        _remote = remote;
        _previewScheme = previewScheme;
        Credential = credential ?? RunnerCredential.SharedSecret;
        _logger = services.Loggers.CreateLogger<RunnerConnection>();
        _stream = new WebSocketLinkStream(socket, LinkProtocol.MaxMessageBytes);
        var options = services.Options;
        _publishLimiter = Bucket(options.PublishCallsPerSecond, options.PublishCallsPerSecond * 2);
        _heartbeatLimiter = Bucket(options.HeartbeatsPerSecond, 10);
    }

    private enum HelloState { None, InProgress, Done, Refused }

    private HelloState HelloStatus => (HelloState)Volatile.Read(ref _helloState);

    private bool TryMoveHello(HelloState from, HelloState to) =>
        Interlocked.CompareExchange(ref _helloState, (int)to, (int)from) == (int)from;

    private void SetHello(HelloState state) => Volatile.Write(ref _helloState, (int)state);

    public Guid ConnectionId { get; } = Guid.NewGuid();

    /// <summary>What the link's token proved: the per-runner token it was made with (closed when that is revoked), or the shared secret.</summary>
    public RunnerCredential Credential { get; }

    /// <summary>Set by a successful Hello.</summary>
    public string? RunnerId { get; private set; }

    /// <summary>When the Hello was recorded, on the database's clock.</summary>
    public DateTimeOffset ConnectedAt { get; private set; }

    public IRunnerService? Runner { get; private set; }

    public TimeSpan SinceHeard => TimeSpan.FromMilliseconds(Environment.TickCount64 - Interlocked.Read(ref _lastHeard));

    public bool IsReady => HelloStatus == HelloState.Done && !_closed.IsCancellationRequested;

    public async Task RunAsync(CancellationToken aborted)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(aborted, _closed.Token);
        var ct = linked.Token;
        (WebSocketCloseStatus Status, string Reason)? close = null;
        try
        {
            _mux = await LinkTransport.CreateMuxAsync(_stream, ct);
            using var helloDeadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            helloDeadline.CancelAfter(_services.Options.HelloTimeout);
            var accept = _mux.AcceptChannelAsync(LinkProtocol.RpcChannel, helloDeadline.Token);
            if (await Task.WhenAny(accept, _mux.Completion) != accept)
            {
                await helloDeadline.CancelAsync();
                close = _mux.Completion.IsFaulted ? (WebSocketCloseStatus.ProtocolError, LinkCloseReasons.MalformedInput) : null;
                return;
            }

            var channel = await accept;
            _rpc = LinkTransport.CreateRpc(channel.AsStream());
            _rpc.AddLocalRpcTarget<IBrokerService>(new BrokerService(this), null);
            Runner = _rpc.Attach<IRunnerService>();
            _rpc.Disconnected += (_, e) =>
            {
                if (e.Reason is DisconnectedReason.ParseError or DisconnectedReason.RemoteProtocolViolation or DisconnectedReason.StreamError)
                {
                    _logger.LogInformation("Link of {Runner} ({Remote}) ended: {Reason} {Description}", RunnerId ?? "?", _remote, e.Reason, e.Description);
                }
            };
            _rpc.StartListening();
            _ = EnforceHelloDeadlineAsync(ct);

            await Task.WhenAny(_rpc.Completion, _mux.Completion, Task.Delay(Timeout.Infinite, ct));
            if (_rpc.Completion.IsFaulted || _mux.Completion.IsFaulted) close = (WebSocketCloseStatus.ProtocolError, LinkCloseReasons.MalformedInput);
        }
        catch (OperationCanceledException) when (!aborted.IsCancellationRequested)
        {
            // Our own decision (a close already sent with its reason) or the Hello deadline passing before any channel.
            if (HelloStatus != HelloState.Done) close = (WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HelloTimeout);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is IOException or WebSocketException or InvalidDataException or ObjectDisposedException or MultiplexingProtocolException)
        {
            close = (WebSocketCloseStatus.ProtocolError, LinkCloseReasons.MalformedInput);
            _logger.LogInformation("Link of {Runner} ({Remote}) failed: {Message}", RunnerId ?? "?", _remote, e.Message);
        }
        finally
        {
            await TearDownAsync(close);
        }
    }

    /// <summary>Closes the link with a reason the runner sees in the close frame.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        await _stream.CloseAsync(status, reason);
        await _closed.CancelAsync();
    }

    /// <summary>Wakes the delivery loop (a command was queued for this runner).</summary>
    public void WakeDelivery() => _wake.Writer.TryWrite(true);

    public void Heard() => Interlocked.Exchange(ref _lastHeard, Environment.TickCount64);

    /// <summary>The broker's own heartbeat to the runner; an answer counts as hearing from it.</summary>
    public async Task<bool> PingAsync(TimeSpan timeout)
    {
        if (Runner is null || !IsReady) return false;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        cts.CancelAfter(timeout);
        try
        {
            await Runner.HeartbeatAsync(new Heartbeat(DateTimeOffset.UtcNow), cts.Token);
            Heard();
            return true;
        }
        catch (Exception e) when (e is OperationCanceledException or ConnectionLostException or ObjectDisposedException or RemoteInvocationException)
        {
            return false;
        }
    }

    /// <summary>Preview channels open over this link now.</summary>
    public int OpenPreviewChannels => Volatile.Read(ref _previewChannels);

    /// <summary>
    /// Opens a preview channel to the project's dev server on the runner (the runner checks it has one) and returns it as a
    /// stream: what the preview relay forwards an HTTP or WebSocket connection over. At most
    /// <see cref="BrokerOptions.MaxPreviewChannelsPerRunner"/> are open at once (else <see cref="PreviewChannelLimitException"/>).
    /// <paramref name="slot"/> is given back exactly once: when the channel closes, or at once when none was opened.
    /// </summary>
    public async Task<Stream> OpenPreviewStreamAsync(Guid projectId, PreviewChannelSlot slot, CancellationToken cancellationToken)
    {
        var opened = false;
        try
        {
            if (_mux is null || Runner is null || !IsReady) throw new InvalidOperationException("The runner's link is not ready.");
            var limit = _services.Options.MaxPreviewChannelsPerRunner;
            if (Interlocked.Increment(ref _previewChannels) > limit)
            {
                Interlocked.Decrement(ref _previewChannels);
                throw new PreviewChannelLimitException("runner", limit);
            }
            slot.Add(() => Interlocked.Decrement(ref _previewChannels));

            var name = LinkProtocol.PreviewChannel(Guid.NewGuid());
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closed.Token);
            var offer = _mux.OfferChannelAsync(name, cts.Token);
            var ack = await Runner.OpenPreviewChannelAsync(new OpenPreviewChannel(projectId, name), cts.Token);
            if (!ack.Accepted)
            {
                await cts.CancelAsync();
                try { await offer; } catch (OperationCanceledException) { }
                throw new InvalidOperationException(ack.Error ?? "The runner refused the preview channel.");
            }
            var channel = await offer;
            // The forwarder disposing the stream gives the slot back; so does the channel ending first (the link dropped).
            _ = channel.Completion.ContinueWith(static (_, state) => ((PreviewChannelSlot)state!).Dispose(), slot,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            opened = true;
            return new PreviewChannelStream(channel.AsStream(), slot);
        }
        finally
        {
            if (!opened) slot.Dispose();
        }
    }

    private async Task EnforceHelloDeadlineAsync(CancellationToken ct)
    {
        try
        {
            await Task.Delay(_services.Options.HelloTimeout, ct);
            if (HelloStatus != HelloState.Done) await CloseAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HelloTimeout);
        }
        catch (OperationCanceledException) { }
    }

    internal async Task<HelloReply> HelloAsync(RunnerHello hello, CancellationToken cancellationToken)
    {
        Heard();
        RefuseHelloOverLimits(hello);
        if (hello is null) throw Error(LinkErrorCodes.InvalidRequest, "Hello needs a body.");
        if (hello.ProtocolVersion != LinkProtocol.Version)
        {
            var reason = $"{LinkCloseReasons.ProtocolMismatch}: runner speaks {hello.ProtocolVersion}, broker speaks {LinkProtocol.Version}";
            _logger.LogWarning("Refusing runner {Runner}: {Reason}", hello.RunnerId, reason);
            _ = CloseAfterReplyAsync(WebSocketCloseStatus.PolicyViolation, reason);
            throw Error(LinkErrorCodes.ProtocolMismatch, reason + ". Update the runner or the broker so both speak the same version.");
        }
        if (!RunnerIds.IsValid(hello.RunnerId))
        {
            throw Error(LinkErrorCodes.InvalidRequest, RunnerIds.Rule);
        }
        if (!TryMoveHello(HelloState.None, HelloState.InProgress))
        {
            throw Error(LinkErrorCodes.InvalidRequest, "Hello was already sent on this link.");
        }

        // A per-runner token speaks for its own runner id only: refused before the runner is marked online, told its
        // sequence or displaces the real runner's link. The link closes; the CLI prints the reason and exits.
        string? refusal;
        try
        {
            refusal = await _services.Authenticator.CheckIdentityAsync(Credential, hello.RunnerId, cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            SetHello(HelloState.None);
            throw Error(LinkErrorCodes.Unavailable, "The broker's database is unavailable; try again shortly.");
        }
        if (refusal is not null)
        {
            _logger.LogWarning("Refusing a Hello as {Runner} from {Remote} with token {TokenId}: {Reason}", hello.RunnerId, _remote, Credential.TokenId, refusal);
            _ = CloseAfterReplyAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.IdentityRefused);
            throw Error(LinkErrorCodes.IdentityRefused, refusal);
        }

        long committed;
        try
        {
            (committed, var connectedAt) = await _services.Runners.MarkOnlineAsync(hello, cancellationToken);
            ConnectedAt = connectedAt;
            Interlocked.Exchange(ref _committedSeq, committed);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            SetHello(HelloState.None);
            throw Error(LinkErrorCodes.Unavailable, "The broker's database is unavailable; try again shortly.");
        }

        RunnerId = hello.RunnerId;
        if (_services.Registry.Register(hello.RunnerId, this) is { } previous)
        {
            _ = previous.CloseAsync(WebSocketCloseStatus.NormalClosure, LinkCloseReasons.Replaced);
        }
        SetHello(HelloState.Done);
        _logger.LogInformation("Runner {Runner} {Version} connected from {Remote}; committed through seq {Seq}", hello.RunnerId, hello.Version, _remote, committed);

        _delivery = Task.Run(() => DeliverLoopAsync(_closed.Token));
        WakeDelivery();
        return new HelloReply(LinkProtocol.Version, _services.Identity.Id, committed, _services.Identity.PreviewDomain,
            (int)LinkProtocol.HeartbeatInterval.TotalSeconds);
    }

    /// <summary>A Hello field over its bound (Protocol's <see cref="LinkLimits"/>) is refused before anything is written; the link closes.</summary>
    private void RefuseHelloOverLimits(RunnerHello? hello)
    {
        if (hello is null || LinkLimits.Check(hello) is not { } problem) return;
        _logger.LogWarning("Refusing a Hello from {Remote}: {Problem}", _remote, problem);
        TryMoveHello(HelloState.None, HelloState.Refused); // so no second Hello slips in before the close
        _ = CloseAfterReplyAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HelloOverLimits);
        throw Error(LinkErrorCodes.InvalidRequest, problem);
    }

    internal async Task<EventAck> PublishEventsAsync(EventBatch batch, CancellationToken cancellationToken)
    {
        var runnerId = RequireHello();
        Heard();
        using var lease = _publishLimiter.AttemptAcquire();
        if (!lease.IsAcquired) throw Error(LinkErrorCodes.RateLimited, "Too many PublishEvents calls; slow down and retry.");
        if (batch?.Events is null) throw Error(LinkErrorCodes.InvalidRequest, "PublishEvents needs a batch of events.");
        if (batch.Events.Count > _services.Options.MaxEventsPerBatch)
        {
            throw Error(LinkErrorCodes.InvalidRequest, $"A batch holds at most {_services.Options.MaxEventsPerBatch} events.");
        }

        if (batch.Events.Count == 0) return new EventAck(Interlocked.Read(ref _committedSeq));
        try
        {
            var (committed, refused) = await _services.Events.IngestAsync(runnerId, batch.Events, _previewScheme, cancellationToken);
            InterlockedMax(ref _committedSeq, committed);
            return new EventAck(committed, refused);
        }
        catch (ArgumentException e)
        {
            throw Error(LinkErrorCodes.InvalidRequest, e.Message);
        }
        catch (Exception e) when (IsDatabaseFailure(e) && !cancellationToken.IsCancellationRequested)
        {
            _logger.LogWarning("Event intake for {Runner} failed: {Message}", runnerId, e.Message);
            throw Error(LinkErrorCodes.Unavailable, "The event store is unavailable; the runner keeps the events and retries.");
        }
    }

    internal async Task ReportCommandResultAsync(CommandResult result, CancellationToken cancellationToken)
    {
        var runnerId = RequireHello();
        Heard();
        if (result is null) throw Error(LinkErrorCodes.InvalidRequest, "ReportCommandResult needs a result.");
        try
        {
            await _services.Commands.CompleteAsync(runnerId, result, cancellationToken);
        }
        catch (Exception e) when (IsDatabaseFailure(e))
        {
            throw Error(LinkErrorCodes.Unavailable, "The command store is unavailable; retry.");
        }
    }

    internal Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat)
    {
        RequireHello();
        using var lease = _heartbeatLimiter.AttemptAcquire();
        if (!lease.IsAcquired) throw Error(LinkErrorCodes.RateLimited, "Too many heartbeats.");
        Heard();
        return Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow));
    }

    private async Task DeliverLoopAsync(CancellationToken ct)
    {
        var runnerId = RunnerId!;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                while (await _services.Commands.ClaimNextAsync(runnerId, _services.Identity.Id, ConnectedAt, ct) is { } claimed)
                {
                    await DeliverAsync(claimed, ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is ConnectionLostException or ObjectDisposedException)
            {
                return;
            }
            catch (Exception e) when (IsDatabaseFailure(e))
            {
                _logger.LogWarning("Command delivery to {Runner} paused: {Message}", runnerId, e.Message);
                try { await Task.Delay(TimeSpan.FromSeconds(1), ct); } catch (OperationCanceledException) { return; }
                continue;
            }

            using var poll = CancellationTokenSource.CreateLinkedTokenSource(ct);
            poll.CancelAfter(TimeSpan.FromSeconds(30));
            try { await _wake.Reader.ReadAsync(poll.Token); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { }
            catch (OperationCanceledException) { return; }
        }
    }

    private async Task DeliverAsync(ClaimedCommand claimed, CancellationToken ct)
    {
        RunnerCommand? command;
        try
        {
            command = JsonSerializer.Deserialize<RunnerCommand>(claimed.Payload, LinkProtocol.JsonOptions);
        }
        catch (JsonException e)
        {
            command = null;
            _logger.LogWarning("Command {Id} has an unreadable payload: {Message}", claimed.Id, e.Message);
        }
        if (command is null)
        {
            await _services.Commands.MarkFailedAsync(claimed.Id, "The command's payload could not be read.", CancellationToken.None);
            return;
        }

        ActivityContext.TryParse(claimed.TraceParent, null, out var parent);
        using var activity = LinkServices.ActivitySource.StartActivity("deliver command", ActivityKind.Producer, parent);
        activity?.SetTag("sentryvibe.command.id", claimed.Id);
        activity?.SetTag("sentryvibe.command.attempt", claimed.Attempts);
        activity?.SetTag("sentryvibe.runner.id", RunnerId);

        var envelope = new CommandEnvelope(claimed.Id, command, claimed.CreatedAt, activity?.Id ?? claimed.TraceParent);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_services.Options.CommandAckTimeout);
        CommandAck ack;
        try
        {
            ack = await Runner!.ExecuteAsync(envelope, timeout.Token);
        }
        catch (RemoteInvocationException e)
        {
            activity?.SetStatus(ActivityStatusCode.Error, e.Message);
            await _services.Commands.MarkFailedAsync(claimed.Id, $"The runner failed the command: {e.Message}", CancellationToken.None);
            return;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // Left "delivered": the runner's next connection gets it again and its journal answers a duplicate.
            activity?.SetStatus(ActivityStatusCode.Error, "no ack in time");
            _logger.LogWarning("Runner {Runner} did not ack command {Id} in time", RunnerId, claimed.Id);
            return;
        }

        activity?.SetTag("sentryvibe.command.duplicate", ack.Duplicate);
        await _services.Commands.MarkAckedAsync(claimed.Id, ack, CancellationToken.None);
    }

    private string RequireHello() =>
        HelloStatus == HelloState.Done && RunnerId is { } id ? id : throw Error(LinkErrorCodes.HelloRequired, "Send Hello first.");

    private async Task CloseAfterReplyAsync(WebSocketCloseStatus status, string reason)
    {
        // Lets the JSON-RPC error reply go out before the close frame.
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        await CloseAsync(status, reason);
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
            catch (Exception e) when (IsDatabaseFailure(e) || e is OperationCanceledException)
            {
                // The sweeper marks it offline once LastSeenAt is old enough.
                _logger.LogWarning("Could not mark runner {Runner} offline: {Message}", runnerId, e.Message);
            }
            _logger.LogInformation("Runner {Runner} disconnected{Reason}", runnerId, close is null ? "" : $" ({close.Value.Reason})");
        }

        if (_stream.Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            await _stream.CloseAsync(close?.Status ?? WebSocketCloseStatus.NormalClosure, close?.Reason ?? "link closed");
        }
        await DrainUntilClosedAsync();
        try { await _delivery.WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
    }

    // After our close frame, keep reading (and discarding) until the peer answers or a moment passes: closing a socket
    // with unread input sends a TCP reset, and a reset makes the peer's kernel drop the close frame we just sent.
    private async Task DrainUntilClosedAsync()
    {
        var socket = _stream.Socket;
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
            // InvalidOperationException: the mux is still reading; it will see the close itself.
        }
    }

    public async ValueTask DisposeAsync()
    {
        _rpc?.Dispose();
        if (_mux is not null) await _mux.DisposeAsync();
        await _stream.DisposeAsync();
        _publishLimiter.Dispose();
        _heartbeatLimiter.Dispose();
        _closed.Dispose();
    }

    internal static bool IsDatabaseFailure(Exception e) =>
        e is NpgsqlException or TimeoutException or Microsoft.EntityFrameworkCore.DbUpdateException
        || (e is InvalidOperationException && e.InnerException is not null && IsDatabaseFailure(e.InnerException))
        || e is Microsoft.EntityFrameworkCore.Storage.RetryLimitExceededException;

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current) return;
            current = seen;
        }
    }

    private static LocalRpcException Error(int code, string message) => new(message) { ErrorCode = code };

    private static TokenBucketRateLimiter Bucket(int perSecond, int burst) => new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = Math.Max(1, burst),
        TokensPerPeriod = Math.Max(1, perSecond),
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    });
}

/// <summary>What the runner calls on this connection; a thin shim so only the contract's methods are exposed.</summary>
internal sealed class BrokerService(RunnerConnection connection) : IBrokerService
{
    public Task<HelloReply> HelloAsync(RunnerHello hello, CancellationToken cancellationToken) => connection.HelloAsync(hello, cancellationToken);
    public Task<EventAck> PublishEventsAsync(EventBatch batch, CancellationToken cancellationToken) => connection.PublishEventsAsync(batch, cancellationToken);
    public Task ReportCommandResultAsync(CommandResult result, CancellationToken cancellationToken) => connection.ReportCommandResultAsync(result, cancellationToken);
    public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken) => connection.HeartbeatAsync(heartbeat);
}
