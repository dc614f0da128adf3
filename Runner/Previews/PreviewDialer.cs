using System.Net.WebSockets;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Previews;

/// <summary>
/// Dials the broker for one preview connection: <c>&lt;link&gt;/preview/&lt;ticket&gt;</c> with the link's own token
/// (docs/runner-protocol.md, "Preview relay"). A socket per connection, so a download never queues behind the link's
/// messages or another connection's bytes.
/// </summary>
public sealed class PreviewDialer(Uri link, string token)
{
    private static readonly TimeSpan DialTimeout = TimeSpan.FromSeconds(10);

    public async Task<ClientWebSocket> DialAsync(string ticket, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("Authorization", $"Bearer {token}");
        // The relay's connections carry their own keep-alive (HTTP, or the app's WebSocket pings): none of ours.
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(DialTimeout);
        try
        {
            await socket.ConnectAsync(LinkProtocol.PreviewSocketUri(link, ticket), timeout.Token);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
