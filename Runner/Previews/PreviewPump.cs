using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using Microsoft.Extensions.Logging;
using SentryVibe.Runner.Core;

namespace SentryVibe.Runner.Previews;

/// <summary>
/// Copies a preview socket to and from the dev server's TCP connection: each read from the dev server (up to
/// <see cref="ReadSize"/>) is one binary message, each message from the broker goes to the dev server as it comes.
/// Half-closes pass through: the dev server closing its side sends our close frame; the broker's close frame shuts
/// down the dev server's receiving side.
/// </summary>
public static class PreviewPump
{
    /// <summary>How much one read from the dev server may take.</summary>
    internal const int ReadSize = 64 * 1024;

    /// <summary>
    /// Connects to the dev server this runner started for <paramref name="projectId"/> — the only place a preview may lead,
    /// whichever socket asks (a ticket's or a spare's) — or says why not.
    /// </summary>
    public static async Task<(TcpClient? Tcp, string? Refusal)> ConnectAsync(IPreviewTargets previews, Guid projectId, CancellationToken cancellationToken)
    {
        if (previews.GetDevServerPort(projectId) is not { } port)
        {
            return (null, "The project has no running dev server on this runner.");
        }
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            await tcp.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            return (tcp, null);
        }
        catch (SocketException e)
        {
            tcp.Dispose();
            return (null, $"The dev server on port {port} refused the connection: {e.SocketErrorCode}.");
        }
        catch
        {
            tcp.Dispose(); // cancelled: the link went away meanwhile
            throw;
        }
    }

    public static async Task RunAsync(WebSocket preview, TcpClient tcp, ILogger logger)
    {
        using (tcp)
        using (preview)
        {
            var toServer = Task.Run(() => ToServerAsync(preview, tcp));
            var toBroker = Task.Run(() => ToBrokerAsync(tcp.Client, preview));
            try
            {
                // A side that fails (the dev server reset its connection, the broker's socket broke) ends the other at
                // once: the broker then sees the socket fail and answers the request, instead of both waiting forever.
                if (await Task.WhenAny(toServer, toBroker) is { IsFaulted: true })
                {
                    preview.Abort();
                    tcp.Client.Close();
                }
                await Task.WhenAll(toServer, toBroker);
            }
            catch (Exception e) when (e is IOException or SocketException or WebSocketException or ObjectDisposedException
                                       or InvalidOperationException or OperationCanceledException)
            {
                logger.LogDebug("Preview connection ended: {Message}", e.Message);
                preview.Abort();
            }
        }
    }

    private static async Task ToServerAsync(WebSocket preview, TcpClient tcp)
    {
        var socket = tcp.Client;
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                // A quiet connection (an HMR socket, a pooled keep-alive one) waits without a buffer.
                var first = await preview.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None);
                if (first.MessageType == WebSocketMessageType.Close) break;
                buffer ??= ArrayPool<byte>.Shared.Rent(ReadSize);
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await preview.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close) goto closed;
                    await socket.SendAsync(buffer.AsMemory(0, result.Count), SocketFlags.None);
                }
                while (!result.EndOfMessage);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = null;
            }
        closed:
            socket.Shutdown(SocketShutdown.Send);
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task ToBrokerAsync(Socket socket, WebSocket preview)
    {
        var buffer = (byte[]?)null;
        try
        {
            var drained = true;
            while (true)
            {
                if (drained)
                {
                    await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
                }
                buffer ??= ArrayPool<byte>.Shared.Rent(ReadSize);
                var read = await socket.ReceiveAsync(buffer.AsMemory(0, ReadSize), SocketFlags.None);
                if (read == 0) break;
                await preview.SendAsync(buffer.AsMemory(0, read), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None);
                drained = read < ReadSize;
                if (drained)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
            if (preview.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await preview.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
            }
        }
        finally
        {
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
