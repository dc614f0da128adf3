using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Nerdbank.Streams;

namespace SentryVibe.Runner.Previews;

/// <summary>Copies a preview channel to and from the dev server's socket, passing half-closes through.</summary>
public static class PreviewPump
{
    public static async Task RunAsync(MultiplexingStream.Channel channel, TcpClient tcp, ILogger logger)
    {
        using (tcp)
        using (channel)
        {
            var socket = tcp.GetStream();
            var toServer = Task.Run(async () =>
            {
                await channel.Input.CopyToAsync(socket);
                await channel.Input.CompleteAsync();
                tcp.Client.Shutdown(SocketShutdown.Send);
            });
            var toBroker = Task.Run(async () =>
            {
                await CopyToChannelAsync(tcp.Client, channel.Output);
                await channel.Output.CompleteAsync();
            });
            try
            {
                await Task.WhenAll(toServer, toBroker);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
            {
                logger.LogDebug("Preview channel {Channel} ended: {Message}", channel.QualifiedId, e.Message);
            }
        }
    }

    /// <summary>How much one read from the dev server may take: the channel's pipe otherwise hands out 4 KiB.</summary>
    internal const int ReadSize = 64 * 1024;

    /// <summary>
    /// The dev server's bytes into the channel, a read at a time and flushed at once (a stream, never buffered whole).
    /// Stream.CopyToAsync reads into the pipe's 4 KiB segments: sixteen times the reads (and system calls) for a big
    /// download. When the socket has been drained, a zero-byte read waits for data first, so a quiet channel (an HMR
    /// socket, a pooled keep-alive connection) holds no buffer.
    /// </summary>
    private static async Task CopyToChannelAsync(Socket socket, PipeWriter channel)
    {
        var drained = true;
        while (true)
        {
            if (drained) await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
            var read = await socket.ReceiveAsync(channel.GetMemory(ReadSize), SocketFlags.None);
            if (read == 0) return;
            drained = read < ReadSize;
            channel.Advance(read);
            var flushed = await channel.FlushAsync();
            if (flushed.IsCompleted || flushed.IsCanceled) return;
        }
    }
}
