using SentryVibe.Broker.Link;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The preview channels of one runner's link: each is a WebSocket of its own that the runner dials with a ticket the
/// broker sends over the link, and pipes to one project's dev server — what the preview relay forwards an HTTP or
/// WebSocket connection over (docs/architecture.md, decision 10). At most
/// <see cref="BrokerOptions.MaxPreviewChannelsPerRunner"/> are open at once. A new channel takes one of the link's spare
/// sockets when it has one (docs/runner-protocol.md, "Spare preview sockets"): no round trip to the runner before the
/// request goes out; otherwise it waits for the runner to dial one with a ticket.
/// </summary>
public sealed class RunnerPreviewChannels(RunnerConnection connection, LinkServices services)
{
    private int _open;
    private readonly List<Spare> _spares = []; // idle, the newest last; guarded by itself
    private int _sparesComing; // places taken by spares being accepted
    private string? _spareKey;
    private bool _sparesClosed;

    /// <summary>Preview channels open over this link now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>
    /// Opens a preview channel to the project's dev server on the runner (the runner checks it has one) and returns it as
    /// a stream; over the cap, <see cref="PreviewChannelLimitException"/>. <paramref name="slot"/> is given back exactly
    /// once: when the channel closes, or at once when none was opened.
    /// </summary>
    public async Task<Stream> OpenStreamAsync(Guid projectId, PreviewChannelSlot slot, CancellationToken cancellationToken)
    {
        var opened = false;
        try
        {
            if (connection.Runner is not { } runner || !connection.IsReady || connection.TokenHash is not { } tokenHash)
            {
                throw new InvalidOperationException("The runner's link is not ready.");
            }
            var limit = services.Options.MaxPreviewChannelsPerRunner;
            if (Interlocked.Increment(ref _open) > limit)
            {
                Interlocked.Decrement(ref _open);
                throw new PreviewChannelLimitException("runner", limit);
            }
            slot.Add(() => Interlocked.Decrement(ref _open));

            if (await TakeSpareAsync(projectId, cancellationToken) is { } spare)
            {
                opened = true;
                return new PreviewChannelStream(spare, slot);
            }

            // The whole exchange is bounded by the ticket's life: a runner that sits on the call cannot hold the request.
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connection.Closed);
            cts.CancelAfter(PreviewTickets.Lifetime);
            using var ticket = services.PreviewTickets.Issue(tokenHash);
            PreviewSocketStream socket;
            try
            {
                // WaitAsync: a cancelled JSON-RPC call still waits for the runner's answer, which a runner may never send.
                var ack = await runner.OpenPreviewChannelAsync(new OpenPreviewChannel(projectId, ticket.Value), cts.Token).WaitAsync(cts.Token);
                if (!ack.Accepted) throw new InvalidOperationException(ack.Error ?? "The runner refused the preview channel.");
                socket = await ticket.SocketAsync(cts.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException("The runner did not open the preview socket in time.");
            }
            opened = true;
            // The forwarder disposing the stream closes the socket and gives the slot back.
            return new PreviewChannelStream(socket, slot);
        }
        finally
        {
            if (!opened) slot.Dispose();
        }
    }

    /// <summary>
    /// At Hello: the key this link's spare sockets are dialled with, and how many the broker holds; none when spares are
    /// turned off or the link has no token to bind them to. The key is withdrawn and the spares closed when the link closes.
    /// </summary>
    internal (string? Key, int Count) OfferSpares()
    {
        var count = services.Options.PreviewSparesPerRunner;
        if (count <= 0 || connection.TokenHash is not { } tokenHash) return (null, 0);
        var key = services.PreviewTickets.IssueSpareKey(tokenHash, this);
        lock (_spares) _spareKey = key;
        try
        {
            connection.Closed.Register(CloseSpares);
        }
        catch (ObjectDisposedException)
        {
            CloseSpares();
        }
        return (key, count);
    }

    /// <summary>A place for one more spare socket, taken before it is accepted: false over the cap or once the link closed.</summary>
    internal bool TryReserveSpare()
    {
        lock (_spares)
        {
            if (_sparesClosed || _spares.Count + _sparesComing >= services.Options.PreviewSparesPerRunner) return false;
            _sparesComing++;
            return true;
        }
    }

    /// <summary>The socket for a reserved place arrived (or, null, did not): it waits for a connection, watched.</summary>
    internal void AddSpare(PreviewSocketStream? stream)
    {
        Spare? spare = null;
        lock (_spares)
        {
            _sparesComing--;
            if (stream is not null && !_sparesClosed)
            {
                spare = new Spare(stream, stream.WatchIdle());
                _spares.Add(spare);
            }
        }
        if (spare is null)
        {
            _ = stream?.DisposeAsync();
            return;
        }
        services.PreviewTickets.CountIdleSpares(1);
        _ = RetireAsync(spare);
    }

    /// <summary>
    /// The newest live spare, given the project: the runner pipes it to that project's dev server and the request follows
    /// at once (a runner that cannot closes it with the reason, which the request's error carries). Null when none is left.
    /// </summary>
    private async Task<Stream?> TakeSpareAsync(Guid projectId, CancellationToken cancellationToken)
    {
        while (true)
        {
            Spare spare;
            lock (_spares)
            {
                if (_spares.Count == 0) return null;
                spare = _spares[^1];
                _spares.RemoveAt(_spares.Count - 1);
            }
            services.PreviewTickets.CountIdleSpares(-1);
            await spare.Idle.CancelAsync();
            var bound = false;
            try
            {
                if (!spare.Watch.IsCompleted)
                {
                    await spare.Stream.BindAsync(projectId, cancellationToken);
                    bound = true;
                    services.PreviewTickets.CountSpareTaken();
                    return spare.Stream;
                }
            }
            catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or IOException or ObjectDisposedException)
            {
            }
            finally
            {
                // Closed by the runner, broken, it spoke before it had a project, or the request was cancelled meanwhile.
                if (!bound) await spare.Stream.DisposeAsync();
            }
        }
    }

    /// <summary>Closes a spare that idled too long, that the runner closed or broke, or whose link closed — unless it was taken.</summary>
    private async Task RetireAsync(Spare spare)
    {
        await Task.WhenAny(spare.Watch, Task.Delay(services.Options.PreviewSpareIdle, spare.Idle.Token));
        bool retired;
        lock (_spares) retired = _spares.Remove(spare);
        if (retired)
        {
            services.PreviewTickets.CountIdleSpares(-1);
            await spare.Stream.DisposeAsync();
        }
        spare.Idle.Cancel(); // stops the timer (its source is never disposed: a taker may be cancelling it)
    }

    private void CloseSpares()
    {
        Spare[] idle;
        lock (_spares)
        {
            _sparesClosed = true;
            if (_spareKey is { } key) services.PreviewTickets.WithdrawSpareKey(key);
            idle = [.. _spares];
        }
        foreach (var spare in idle) spare.Idle.Cancel();
    }

    private sealed class Spare(PreviewSocketStream stream, Task watch)
    {
        public PreviewSocketStream Stream { get; } = stream;

        /// <summary>Completes when the runner closes the spare, breaks it, or sends anything on it.</summary>
        public Task Watch { get; } = watch;

        /// <summary>Cancelled when the spare is taken or its link closes; its idle timer waits on it.</summary>
        public CancellationTokenSource Idle { get; } = new();
    }
}
