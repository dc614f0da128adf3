using System.Buffers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using Nerdbank.Streams;
using SentryVibe.Protocol;
using Xunit;

namespace SentryVibe.Link.Tests;

/// <summary>The link's transport on its own: WebSocket (client masking included) → link stream → mux → channel, in memory.</summary>
public sealed class TransportTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Eight_MiB_written_in_uneven_pieces_arrive_intact_and_in_order_through_a_channel()
    {
        await using var link = await MuxPair.CreateAsync();
        var (sending, receiving) = await link.OpenChannelAsync("preview/test");
        var payload = RandomNumberGenerator.GetBytes(8 * 1024 * 1024);

        var send = Task.Run(async () =>
        {
            // Uneven writes, each flushed, like the preview pump: many mux frames, gathered into fewer WebSocket messages.
            for (int offset = 0, size = 1; offset < payload.Length; offset += size, size = size * 7 % 150_001 + 1)
            {
                size = Math.Min(size, payload.Length - offset);
                await sending.Output.WriteAsync(payload.AsMemory(offset, size));
            }
            await sending.Output.CompleteAsync();
        });
        var received = new MemoryStream();
        await receiving.AsStream().CopyToAsync(received).WaitAsync(Wait);
        await send.WaitAsync(Wait);

        Assert.Equal(payload.Length, received.Length);
        Assert.True(payload.AsSpan().SequenceEqual(received.GetBuffer().AsSpan(0, (int)received.Length)), "the bytes differ");
    }

    [Fact]
    public async Task A_small_write_is_delivered_at_once_not_held_for_more()
    {
        await using var link = await MuxPair.CreateAsync();
        var (sending, receiving) = await link.OpenChannelAsync("preview/ping");

        await sending.Output.WriteAsync("ping"u8.ToArray());
        var read = await receiving.Input.ReadAsync().AsTask().WaitAsync(Wait);

        Assert.Equal("ping"u8.ToArray(), read.Buffer.ToArray());
    }

    /// <summary>A broker-side and a runner-side mux over a WebSocket pair whose bytes never leave the process.</summary>
    private sealed class MuxPair : IAsyncDisposable
    {
        private readonly WebSocket[] _sockets;

        private MuxPair(MultiplexingStream client, MultiplexingStream server, WebSocket[] sockets) =>
            (Client, Server, _sockets) = (client, server, sockets);

        public MultiplexingStream Client { get; }
        public MultiplexingStream Server { get; }

        public static async Task<MuxPair> CreateAsync()
        {
            var (a, b) = FullDuplexStream.CreatePair();
            var client = WebSocket.CreateFromStream(a, new WebSocketCreationOptions { IsServer = false });
            var server = WebSocket.CreateFromStream(b, new WebSocketCreationOptions { IsServer = true });
            var muxes = await Task.WhenAll(
                LinkTransport.CreateMuxAsync(new WebSocketLinkStream(client), CancellationToken.None),
                LinkTransport.CreateMuxAsync(new WebSocketLinkStream(server), CancellationToken.None)).WaitAsync(Wait);
            return new MuxPair(muxes[0], muxes[1], [client, server]);
        }

        /// <summary>The runner's end sends (as a dev server's response would), the broker's end receives.</summary>
        public async Task<(MultiplexingStream.Channel Sending, MultiplexingStream.Channel Receiving)> OpenChannelAsync(string name)
        {
            var offer = Server.OfferChannelAsync(name);
            var accepted = await Client.AcceptChannelAsync(name).WaitAsync(Wait);
            return (accepted, await offer.WaitAsync(Wait));
        }

        public async ValueTask DisposeAsync()
        {
            await Client.DisposeAsync();
            await Server.DisposeAsync();
            foreach (var socket in _sockets) socket.Dispose();
        }
    }
}
