using SentryVibe.Broker.Link;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The preview channels of one runner's link: each is a WebSocket of its own that the runner dials with a ticket the
/// broker sends over the link, and pipes to one project's dev server — what the preview relay forwards an HTTP or
/// WebSocket connection over (docs/architecture.md, decision 10). At most
/// <see cref="BrokerOptions.MaxPreviewChannelsPerRunner"/> are open at once.
/// </summary>
public sealed class RunnerPreviewChannels(RunnerConnection connection, LinkServices services)
{
    private int _open;

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
}
