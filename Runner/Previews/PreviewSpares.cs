using System.Net.WebSockets;
using System.Text;
using Microsoft.Extensions.Logging;
using SentryVibe.Protocol;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Previews;

/// <summary>
/// Spare preview sockets (docs/runner-protocol.md, "Spare preview sockets"): once this runner's previews are in use, it
/// keeps up to as many sockets dialled ahead as the broker's Hello reply allows, so the broker's next preview connection
/// needs no round trip to the runner first (a ticket over the link, then TCP, TLS and the WebSocket upgrade back). The
/// broker gives a spare its project as one text message; the runner pipes it to that project's dev server, and dials a
/// replacement. Spares are dialled only when a relayed dev server starts serving, a preview connection opens or a spare
/// is taken — an idle runner holds none, and a spare the broker retires (idle too long) is not dialled again until then.
/// </summary>
public sealed class PreviewSpares(PreviewDialer dialer, IPreviewTargets previews, ILogger logger) : IAsyncDisposable
{
    /// <summary>The most this runner holds, whatever the broker allows.</summary>
    public const int Most = 8;

    private readonly CancellationTokenSource _stopped = new();
    private string? _key;
    private int _wanted;
    private int _held; // dialled or being dialled, not yet taken

    /// <summary>Takes the Hello reply's offer; a broker that makes none (or an older one) gets no spares.</summary>
    public void Enable(string? key, int count)
    {
        if (!LinkProtocol.IsPreviewTicket(key) || count <= 0) return;
        Volatile.Write(ref _key, key);
        Volatile.Write(ref _wanted, Math.Min(count, Most));
    }

    /// <summary>Dials spares up to the number wanted: when a dev server starts serving, a preview connection opened, or a spare was taken.</summary>
    public void Fill()
    {
        if (_key is null || _stopped.IsCancellationRequested) return;
        while (true)
        {
            var held = Volatile.Read(ref _held);
            if (held >= Volatile.Read(ref _wanted)) return;
            if (Interlocked.CompareExchange(ref _held, held + 1, held) == held) _ = HoldAsync();
        }
    }

    private async Task HoldAsync()
    {
        var counted = true;
        WebSocket? socket = null;
        try
        {
            socket = await dialer.DialAsync(_key!, _stopped.Token);
            var bind = new byte[64];
            var message = await socket.ReceiveAsync(bind.AsMemory(), _stopped.Token);
            // The broker closed it (idle too long, its link closed): not dialled again until the next preview connection.
            if (message.MessageType == WebSocketMessageType.Close) return;
            Interlocked.Decrement(ref _held);
            counted = false;
            Fill(); // the replacement, while this one serves

            if (message.MessageType != WebSocketMessageType.Text || !message.EndOfMessage
                || !Guid.TryParseExact(Encoding.ASCII.GetString(bind, 0, message.Count), "D", out var projectId))
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.ProtocolError, "A spare preview socket takes a project id first.", CancellationToken.None);
                return;
            }
            var (tcp, refusal) = await PreviewPump.ConnectAsync(previews, projectId, _stopped.Token);
            if (tcp is null)
            {
                await socket.CloseOutputAsync(WebSocketCloseStatus.InternalServerError, refusal, CancellationToken.None);
                return;
            }
            var serving = socket;
            socket = null; // the pump owns it now
            await PreviewPump.RunAsync(serving, tcp, logger);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException or IOException)
        {
            // A dial the broker refused (its spares for this link are all there) or a socket that broke: the next
            // preview connection dials again.
            logger.LogDebug("Spare preview socket ended: {Message}", e.Message);
        }
        finally
        {
            if (counted) Interlocked.Decrement(ref _held);
            socket?.Dispose();
        }
    }

    /// <summary>The link ended: spares not yet taken are dropped (the broker closes its side with the link).</summary>
    public async ValueTask DisposeAsync() => await _stopped.CancelAsync(); // not disposed: a spare just taken may still read its token
}
