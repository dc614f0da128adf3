using System.Net.WebSockets;
using System.Threading.RateLimiting;
using Npgsql;
using SentryVibe.Protocol;
using StreamJsonRpc;

namespace SentryVibe.Broker.Link;

/// <summary>
/// What the runner calls on its link (<see cref="IBrokerService"/>, the JSON-RPC target of one
/// <see cref="RunnerConnection"/>): Hello, event batches, command results, heartbeats. Each call is checked here
/// (Hello first, limits, rates) and answered with a JSON-RPC error code from <see cref="LinkErrorCodes"/>;
/// a refused Hello closes the link. See docs/runner-protocol.md.
/// </summary>
internal sealed class BrokerService : IBrokerService, IDisposable
{
    private readonly RunnerConnection _connection;
    private readonly LinkServices _services;
    private readonly string _previewScheme;
    private readonly ILogger _logger;
    private readonly TokenBucketRateLimiter _publishLimiter;
    private readonly TokenBucketRateLimiter _heartbeatLimiter;
    private readonly int _publishCallsPerSecond;
    private long _committedSeq;
    /// <summary>Completes, true when it stored its events, once the batch that arrived last is done (<see cref="PublishEventsAsync"/>).</summary>
    private Task<bool> _intakeTail = Task.FromResult(true);
    /// <summary>The first seq of a batch that failed: batches sent behind it are refused until the runner sends from it again.</summary>
    private long? _failedFrom;
    /// <summary>PublishEvents calls of this link taken and not yet answered (at most <see cref="LinkProtocol.BatchesInFlight"/>).</summary>
    private int _publishing;

    public BrokerService(RunnerConnection connection, LinkServices services, string previewScheme)
    {
        _connection = connection;
        _services = services;
        _previewScheme = previewScheme;
        _logger = services.Loggers.CreateLogger<RunnerConnection>();
        var options = services.Options;
        _publishCallsPerSecond = Math.Max(1, options.PublishCallsPerSecond);
        _publishLimiter = Bucket(_publishCallsPerSecond, _publishCallsPerSecond * 2);
        _heartbeatLimiter = Bucket(options.HeartbeatsPerSecond, 10);
    }

    public async Task<HelloReply> HelloAsync(RunnerHello hello, CancellationToken cancellationToken)
    {
        _connection.Heard();
        RefuseHelloOverLimits(hello);
        if (hello is null) throw Error(LinkErrorCodes.InvalidRequest, "Hello needs a body.");
        if (hello.ProtocolVersion != LinkProtocol.Version)
        {
            var reason = $"{LinkCloseReasons.ProtocolMismatch}: runner speaks {hello.ProtocolVersion}, broker speaks {LinkProtocol.Version}";
            _logger.LogWarning("Refusing runner {Runner}: {Reason}", hello.RunnerId, reason);
            _ = _connection.CloseAfterReplyAsync(WebSocketCloseStatus.PolicyViolation, reason);
            throw Error(LinkErrorCodes.ProtocolMismatch, reason + ". Update the runner or the broker so both speak the same version.");
        }
        if (!RunnerIds.IsValid(hello.RunnerId))
        {
            throw Error(LinkErrorCodes.InvalidRequest, RunnerIds.Rule);
        }
        if (!_connection.TryMoveHello(HelloState.None, HelloState.InProgress))
        {
            throw Error(LinkErrorCodes.InvalidRequest, "Hello was already sent on this link.");
        }

        // A per-runner token speaks for its own runner id only, and no credential links a runner id another user owns:
        // refused before the runner is marked online, told its sequence or displaces the real runner's link. The link
        // closes; the CLI prints the reason and exits.
        var credential = _connection.Credential;
        IdentityCheck identity;
        try
        {
            identity = await _services.Authenticator.CheckIdentityAsync(credential, hello.RunnerId, cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            _connection.SetHello(HelloState.None);
            throw Error(LinkErrorCodes.Unavailable, "The broker's database is unavailable; try again shortly.");
        }
        if (identity.Refusal is { } refusal) throw RefuseIdentity(hello.RunnerId, credential, refusal);

        (long CommittedSeq, DateTimeOffset ConnectedAt)? online;
        try
        {
            online = await _services.Runners.MarkOnlineAsync(hello, identity.OwnerId, cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            _connection.SetHello(HelloState.None);
            throw Error(LinkErrorCodes.Unavailable, "The broker's database is unavailable; try again shortly.");
        }

        // Null: the row became another user's between the check and the upsert; nothing was changed.
        if (online is not { } accepted)
        {
            throw RefuseIdentity(hello.RunnerId, credential, RunnerAuthenticator.OwnedByAnother(hello.RunnerId));
        }
        var (committed, connectedAt) = accepted;
        Interlocked.Exchange(ref _committedSeq, committed);
        _connection.Accept(hello.RunnerId, connectedAt);
        _logger.LogInformation("Runner {Runner} {Version} connected from {Remote}; committed through seq {Seq}", hello.RunnerId, hello.Version, _connection.Remote, committed);
        var (spareKey, spares) = _connection.Previews.OfferSpares();
        return new HelloReply(LinkProtocol.Version, _services.Identity.Id, committed, _services.Identity.PreviewDomain,
            (int)LinkProtocol.HeartbeatInterval.TotalSeconds, _publishCallsPerSecond, LinkProtocol.BatchesInFlight,
            _services.Options.MaxEventsPerBatch, AnswersEmptyHeartbeats: true, spareKey, spares);
    }

    /// <remarks>
    /// A runner may send the next batch before this one is answered (<see cref="LinkProtocol.BatchesInFlight"/>). The
    /// link dispatches calls in the order they arrived up to their first await (<see cref="RunnerConnection"/>), so each
    /// batch takes its place behind the one before right here, and is stored only after it. A batch that fails makes
    /// every batch sent behind it fail too, until one starts at or before the failed one's first seq again: otherwise a
    /// later batch would move the committed seq past events that were never stored, and the runner would drop them.
    /// A call beyond the batches a link may have unanswered is refused at once, before it takes a place or holds its
    /// batch in memory behind the others: a runner flooding calls gets refusals, not a queue in the broker. Only a runner
    /// that breaks that limit can lose events to it (a refused call is not a failed batch), and only its own.
    /// </remarks>
    public async Task<EventAck> PublishEventsAsync(EventBatch batch, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _publishing) > LinkProtocol.BatchesInFlight)
        {
            Interlocked.Decrement(ref _publishing);
            _services.Metrics.RateLimited();
            throw Error(LinkErrorCodes.RateLimited,
                $"At most {LinkProtocol.BatchesInFlight} PublishEvents calls may be unanswered at once; wait for an answer.");
        }
        var previous = _intakeTail;
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _intakeTail = done.Task;
        var stored = false;
        long? first = null;
        try
        {
            // Checked and serialized while the batch before it is still in the database (only on a link past its Hello); a
            // malformed one is refused below, in its turn, like any other refusal.
            EventIntake.PreparedBatch? prepared = null;
            ArgumentException? malformed = null;
            if (_connection.Hello == HelloState.Done && batch?.Events is { Count: > 0 } toPrepare && toPrepare.Count <= _services.Options.MaxEventsPerBatch)
            {
                try { prepared = EventIntake.Prepare(toPrepare); }
                catch (ArgumentException e) { malformed = e; }
            }
            await previous;
            var runnerId = RequireHello();
            _connection.Heard();
            if (batch?.Events is { Count: > 0 } events) first = events.Min(e => e?.Seq ?? long.MaxValue);
            if (_failedFrom is { } failed)
            {
                if (first is not { } start || start > failed)
                {
                    throw Error(LinkErrorCodes.Unavailable, $"A batch sent before this one (from seq {failed}) failed; send again from it.");
                }
                _failedFrom = null;
            }
            if (!Take(_publishLimiter))
            {
                _services.Metrics.RateLimited();
                throw Error(LinkErrorCodes.RateLimited, $"Too many PublishEvents calls (at most {_publishCallsPerSecond} a second); slow down and retry.");
            }
            if (batch?.Events is null) throw Error(LinkErrorCodes.InvalidRequest, "PublishEvents needs a batch of events.");
            if (batch.Events.Count > _services.Options.MaxEventsPerBatch)
            {
                throw Error(LinkErrorCodes.InvalidRequest, $"A batch holds at most {_services.Options.MaxEventsPerBatch} events.");
            }

            if (batch.Events.Count == 0)
            {
                stored = true;
                return new EventAck(Interlocked.Read(ref _committedSeq));
            }
            if (malformed is not null) throw Error(LinkErrorCodes.InvalidRequest, malformed.Message);
            try
            {
                prepared ??= EventIntake.Prepare(batch.Events); // its Hello answered while this call waited its turn
                var (committed, refused) = await _services.Events.IngestAsync(runnerId, prepared, _previewScheme, cancellationToken);
                InterlockedMax(ref _committedSeq, committed);
                stored = true;
                return new EventAck(committed, refused);
            }
            catch (ArgumentException e)
            {
                throw Error(LinkErrorCodes.InvalidRequest, e.Message);
            }
            catch (Exception e) when (DatabaseFailures.Is(e) && !cancellationToken.IsCancellationRequested)
            {
                _logger.LogWarning("Event intake for {Runner} failed: {Message}", runnerId, e.Message);
                throw Error(LinkErrorCodes.Unavailable, "The event store is unavailable; the runner keeps the events and retries.");
            }
        }
        finally
        {
            if (!stored && first is { } start) _failedFrom = Math.Min(_failedFrom ?? start, start);
            Interlocked.Decrement(ref _publishing); // before the answer goes out, so the runner's next call finds room
            done.SetResult(stored);
        }
    }

    public async Task ReportCommandResultAsync(CommandResult result, CancellationToken cancellationToken)
    {
        var runnerId = RequireHello();
        _connection.Heard();
        if (result is null) throw Error(LinkErrorCodes.InvalidRequest, "ReportCommandResult needs a result.");
        try
        {
            await _services.Commands.CompleteAsync(runnerId, result, cancellationToken);
        }
        catch (Exception e) when (DatabaseFailures.Is(e))
        {
            throw Error(LinkErrorCodes.Unavailable, "The command store is unavailable; retry.");
        }
    }

    /// <summary>The heartbeat of runners on brokers before empty-message heartbeats, kept for them.</summary>
    public Task<Heartbeat> HeartbeatAsync(Heartbeat heartbeat, CancellationToken cancellationToken)
    {
        RequireHello();
        if (!TakeHeartbeat()) throw Error(LinkErrorCodes.RateLimited, "Too many heartbeats.");
        return Task.FromResult(new Heartbeat(DateTimeOffset.UtcNow));
    }

    /// <summary>
    /// An empty message, the runner's heartbeat (docs/runner-protocol.md, "Liveness"): whether to answer it. Not before
    /// the Hello, and within the same allowance as <see cref="HeartbeatAsync"/>; one over it is left unanswered.
    /// </summary>
    internal bool HeartbeatMessage() => _connection.Hello == HelloState.Done && TakeHeartbeat();

    private bool TakeHeartbeat()
    {
        if (!Take(_heartbeatLimiter))
        {
            _services.Metrics.RateLimited();
            return false;
        }
        _connection.Heard();
        return true;
    }

    public void Dispose()
    {
        _publishLimiter.Dispose();
        _heartbeatLimiter.Dispose();
    }

    private LocalRpcException RefuseIdentity(string runnerId, RunnerCredential credential, string refusal)
    {
        _logger.LogWarning("Refusing a Hello as {Runner} from {Remote} with token {TokenId}: {Reason}", runnerId, _connection.Remote, credential.TokenId, refusal);
        _ = _connection.CloseAfterReplyAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.IdentityRefused);
        return Error(LinkErrorCodes.IdentityRefused, refusal);
    }

    /// <summary>A Hello field over its bound (Protocol's <see cref="LinkLimits"/>) is refused before anything is written; the link closes.</summary>
    private void RefuseHelloOverLimits(RunnerHello? hello)
    {
        if (hello is null || LinkLimits.Check(hello) is not { } problem) return;
        _logger.LogWarning("Refusing a Hello from {Remote}: {Problem}", _connection.Remote, problem);
        _connection.TryMoveHello(HelloState.None, HelloState.Refused); // so no second Hello slips in before the close
        _ = _connection.CloseAfterReplyAsync(WebSocketCloseStatus.PolicyViolation, LinkCloseReasons.HelloOverLimits);
        throw Error(LinkErrorCodes.InvalidRequest, problem);
    }

    private string RequireHello() =>
        _connection.Hello == HelloState.Done && _connection.RunnerId is { } id ? id : throw Error(LinkErrorCodes.HelloRequired, "Send Hello first.");

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

    /// <remarks>
    /// The buckets refill when they are used, by the time since they last were (<see cref="Take"/>), not on a timer: a
    /// timer per bucket was two per link, 2,000 callbacks a second queued on the thread pool among 1,000 idle links,
    /// in bursts in front of the work that had something to do (a command's delivery).
    /// </remarks>
    private static TokenBucketRateLimiter Bucket(int perSecond, int burst) => new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = Math.Max(1, burst),
        TokensPerPeriod = Math.Max(1, perSecond),
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = false,
    });

    private static bool Take(TokenBucketRateLimiter bucket)
    {
        bucket.TryReplenish();
        using var lease = bucket.AttemptAcquire();
        return lease.IsAcquired;
    }
}
