using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Reflection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SentryVibe.Protocol;
using SentryVibe.Runner.Previews;
using SentryVibe.Runner.Build;
using SentryVibe.Runner.Core;
using StreamJsonRpc;

namespace SentryVibe.Runner.Link;

/// <summary>
/// Keeps this runner linked to its broker: connects (bearer token), says Hello, resends the outbox from the broker's
/// committed seq, sends events in batches, heartbeats, and reconnects with jittered exponential backoff.
/// </summary>
public sealed class LinkClient(
    IOptions<RunnerOptions> options,
    EventOutbox outbox,
    CommandJournal journal,
    ICommandHandler handler,
    IPreviewTargets previews,
    ActiveBuilds activeBuilds,
    CommandResultQueue results,
    LinkState state,
    IHostApplicationLifetime lifetime,
    ILogger<LinkClient> logger,
    SentryVibe.Runner.Agents.AgentCatalog? agents = null,
    IOptions<SentryVibe.Runner.Previews.PreviewOptions>? previewOptions = null,
    SentryVibe.Runner.Agents.AgentSandbox? sandbox = null,
    IOptions<SentryVibe.Runner.Agents.AgentOptions>? agentOptions = null) : BackgroundService
{
    private static readonly TimeSpan FirstDelay = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    public static string RunnerVersion { get; } =
        typeof(LinkClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>Capabilities announced in Hello.</summary>
    public IReadOnlyList<string> Capabilities { get; init; } = ["build", "dev-server", "preview-relay"];

    /// <summary>"agent-sandbox" when agents' shells are confined here, else "agent-not-sandboxed" (the status file says why).</summary>
    private IReadOnlyList<string> WithSandbox(IReadOnlyList<string> capabilities) =>
        SentryVibe.Runner.Agents.AgentSandbox.Describe(sandbox, agentOptions?.Value) is { } line
            ? [.. capabilities, line.StartsWith("agent sandbox: on", StringComparison.Ordinal) ? "agent-sandbox" : "agent-not-sandboxed"]
            : capabilities;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (SentryVibe.Runner.Agents.AgentSandbox.Describe(sandbox, agentOptions?.Value) is { } sandboxLine)
        {
            logger.LogInformation("{Sandbox}", sandboxLine);
        }
        var attempt = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            state.Set(LinkStates.Connecting, attempt: attempt);
            try
            {
                var helloDone = await RunConnectionAsync(stoppingToken);
                if (helloDone) attempt = 0;
                state.Set(LinkStates.Disconnected, attempt: attempt);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (RemoteInvocationException e) when (e.ErrorCode == LinkErrorCodes.ProtocolMismatch)
            {
                // Retrying cannot help: the user has to update one side.
                logger.LogCritical("The broker refused this runner: {Message}", e.Message);
                state.Set(LinkStates.Incompatible, e.Message);
                Environment.ExitCode = 2;
                lifetime.StopApplication();
                return;
            }
            catch (RemoteInvocationException e) when (e.ErrorCode == LinkErrorCodes.IdentityRefused)
            {
                // The token belongs to another runner id: reconnecting would be refused the same way. `run` prints
                // the broker's reason as its one line of error (docs/runner-protocol.md).
                state.Set(LinkStates.Refused, e.Message);
                Environment.ExitCode = 2;
                lifetime.StopApplication();
                return;
            }
            catch (LinkRefusedException e)
            {
                logger.LogError("{Message}", e.Message);
                state.Set(LinkStates.Unauthorized, e.Message, attempt);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                logger.LogWarning("Link to {Broker} lost: {Message}", options.Value.BrokerUri, e.Message);
                state.Set(LinkStates.Disconnected, e.Message, attempt);
            }

            var delay = Backoff(attempt++);
            try { await Task.Delay(delay, stoppingToken); }
            catch (OperationCanceledException) { break; }
        }
        state.Set(LinkStates.Stopped);
    }

    /// <summary>Full jitter over an exponential ceiling: 0.5 s, 1 s, 2 s … capped at 30 s.</summary>
    public static TimeSpan Backoff(int attempt)
    {
        var ceiling = Math.Min(MaxDelay.TotalMilliseconds, FirstDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        return TimeSpan.FromMilliseconds(ceiling / 2 + Random.Shared.NextDouble() * ceiling / 2);
    }

    /// <returns>Whether the Hello succeeded (the backoff starts over then).</returns>
    private async Task<bool> RunConnectionAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {o.Token}");
        // The link's heartbeats keep it alive (docs/runner-protocol.md, "Liveness"): no WebSocket keep-alive frames as well.
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        socket.Options.CollectHttpResponseDetails = true;
        using (var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
        {
            connectTimeout.CancelAfter(CallTimeout);
            try
            {
                await socket.ConnectAsync(o.BrokerUri, connectTimeout.Token);
            }
            catch (WebSocketException) when (socket.HttpStatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
            {
                throw new LinkRefusedException($"The broker at {o.BrokerUri} refused the runner token ({(int)socket.HttpStatusCode}). " +
                    "Create a runner token in the web UI and run `sentryvibe-runner login --broker <url> --token <token>`.");
            }
        }

        var link = new LinkSocket(socket);
        using var linkCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var ct = linkCts.Token;
        using var rpc = LinkTransport.CreateRpc(link);
        var dialer = new PreviewDialer(o.BrokerUri, o.Token ?? "");
        await using var spares = new PreviewSpares(dialer, previews, logger);
        rpc.AddLocalRpcTarget<IRunnerService>(new RunnerService(dialer, spares, journal, handler, previews, activeBuilds, logger), null);
        var broker = rpc.Attach<IBrokerService>();
        rpc.StartListening();

        HelloReply reply;
        using (var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            helloTimeout.CancelAfter(CallTimeout);
            reply = await broker.HelloAsync(new RunnerHello(
                LinkProtocol.Version, o.RunnerId, RunnerVersion, o.Name, Dns.GetHostName(), WithSandbox(Capabilities),
                // The agents this machine can actually run, so Web picks a sensible default (claude-code only when installed).
                agents?.Available() ?? [Protocol.Agents.None], previewOptions?.Value.Provider ?? "relay"), helloTimeout.Token);
        }
        spares.Enable(reply.PreviewSpareKey, reply.PreviewSpares);
        state.PreviewSpares = spares;
        await outbox.SyncWithBrokerAsync(reply.CommittedThroughSeq);
        state.Set(LinkStates.Connected, brokerId: reply.BrokerId, previewDomain: reply.PreviewDomain);
        logger.LogInformation("Linked to broker {Broker} as {Runner}; {Pending} events to resend after seq {Seq}",
            reply.BrokerId, o.RunnerId, outbox.PendingCount, reply.CommittedThroughSeq);

        var loops = new[]
        {
            SendEventsAsync(broker, TimeSpan.FromSeconds(1.0 / Math.Max(1, reply.PublishCallsPerSecond)),
                Math.Clamp(reply.BatchesInFlight, 1, LinkProtocol.BatchesInFlight), Math.Clamp(reply.EventsPerBatch, 1, LinkProtocol.EventsPerBatch), ct),
            LinkTransport.RunnerHeartbeatAsync(link, broker, reply, () => new Heartbeat(DateTimeOffset.UtcNow, activeBuilds.Current), ct),
            SendResultsAsync(broker, ct),
        };
        try
        {
            var ended = await Task.WhenAny([rpc.Completion, .. loops]);
            if (stoppingToken.IsCancellationRequested)
            {
                await link.CloseAsync(WebSocketCloseStatus.NormalClosure, "runner shutting down");
                return true;
            }
            await ended; // surfaces the reason
            if (socket.CloseStatus is { } status)
            {
                logger.LogWarning("The broker closed the link: {Status} {Reason}", status, socket.CloseStatusDescription);
                state.Set(LinkStates.Disconnected, $"closed by broker: {socket.CloseStatusDescription ?? status.ToString()}");
            }
            return true;
        }
        finally
        {
            state.PreviewSpares = null;
            await linkCts.CancelAsync();
            try { await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(5)); } catch (Exception) { }
        }
    }

    /// <param name="spacing">
    /// The least time from one PublishEvents call to the next, by the rate the broker's Hello reply states. A call waits
    /// out what is left of it and takes along every event that arrived meanwhile: a build log of hundreds of lines a
    /// second goes in a hundred calls a second at most, each a little bigger, and is never refused for its rate (which
    /// would cost a retry backoff of half a second or more).
    /// </param>
    /// <param name="inFlight">
    /// Calls that may be unanswered at once (the broker's Hello reply says how many it takes): the next batch travels
    /// while the broker stores the one before. Answers are taken in the order the calls went out. When one fails, the
    /// broker refuses the ones sent behind it, so those are waited out and everything unacknowledged goes again.
    /// </param>
    /// <param name="batchSize">Events in one call at most, as the broker's Hello reply states (and 2 MB of them).</param>
    private async Task SendEventsAsync(IBrokerService broker, TimeSpan spacing, int inFlight, int batchSize, CancellationToken ct)
    {
        var failures = 0;
        var lastCall = 0L;
        var calls = new Queue<(IReadOnlyList<RunnerEvent> Batch, Task<EventAck> Answer)>(inFlight);
        var sentThrough = 0L; // the last seq on its way; 0: send from the oldest unacknowledged event
        while (!ct.IsCancellationRequested)
        {
            if (calls.Count == 0) await outbox.WaitForPendingAsync(sentThrough, ct);
            if (calls.Count < inFlight && outbox.HasPendingAfter(sentThrough))
            {
                var early = spacing - Stopwatch.GetElapsedTime(lastCall);
                if (early > TimeSpan.Zero) await Task.Delay(early, ct);
                var batch = outbox.PeekBatch(batchSize, after: sentThrough);
                if (batch.Count > 0)
                {
                    lastCall = Stopwatch.GetTimestamp();
                    calls.Enqueue((batch, PublishAsync(broker, batch, ct)));
                    sentThrough = batch[^1].Seq;
                    continue;
                }
            }
            if (calls.Count == 0) continue;

            var (sent, answer) = calls.Dequeue();
            try
            {
                Acknowledge(await answer);
                failures = 0;
            }
            catch (RemoteInvocationException e) when (e.ErrorCode is LinkErrorCodes.Unavailable or LinkErrorCodes.RateLimited or LinkErrorCodes.InvalidRequest)
            {
                // The events stay in the outbox; the broker (or its database) gets them when it can take them.
                if (e.ErrorCode == LinkErrorCodes.InvalidRequest) logger.LogError("The broker refused events {First}..{Last}: {Message}", sent[0].Seq, sent[^1].Seq, e.Message);
                while (calls.Count > 0)
                {
                    try { Acknowledge(await calls.Dequeue().Answer); }
                    catch (RemoteInvocationException) { } // refused as sent behind the failed one
                }
                sentThrough = 0;
                await Task.Delay(Backoff(failures++), ct);
            }
        }
    }

    private static async Task<EventAck> PublishAsync(IBrokerService broker, IReadOnlyList<RunnerEvent> batch, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(CallTimeout * 2);
        return await broker.PublishEventsAsync(new EventBatch(batch), timeout.Token);
    }

    private void Acknowledge(EventAck ack)
    {
        // Refused events are settled (the committed seq covers them): they leave the outbox with this ack and are never
        // sent again, so each is logged exactly once.
        foreach (var refused in ack.Refused ?? [])
        {
            logger.LogWarning("The broker refused event {Seq} and dropped it: {Reason}", refused.Seq, refused.Reason);
        }
        // Not awaited: recording the ack on disk is the trimmer's business, not the sender's.
        _ = outbox.AcknowledgeAsync(ack.CommittedThroughSeq);
    }

    private async Task SendResultsAsync(IBrokerService broker, CancellationToken ct)
    {
        while (await results.Reader.WaitToReadAsync(ct))
        {
            while (results.Reader.TryRead(out var result))
            {
                try
                {
                    await broker.ReportCommandResultAsync(result, ct);
                }
                catch (Exception)
                {
                    results.Retry(result);
                    throw;
                }
            }
        }
    }
}

/// <summary>The broker said no before the upgrade (wrong, revoked or missing token).</summary>
public sealed class LinkRefusedException(string message) : Exception(message);
