using Nerdbank.Streams;
using SentryVibe.Broker.Link;
using SentryVibe.Protocol;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// The preview channels of one runner's link: each is a mux channel the runner pipes to one project's dev server,
/// what the preview relay forwards an HTTP or WebSocket connection over. At most
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
            if (connection.Mux is not { } mux || connection.Runner is not { } runner || !connection.IsReady)
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

            var name = LinkProtocol.PreviewChannel(Guid.NewGuid());
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, connection.Closed);
            var offer = mux.OfferChannelAsync(name, cts.Token);
            var ack = await runner.OpenPreviewChannelAsync(new OpenPreviewChannel(projectId, name), cts.Token);
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
}
