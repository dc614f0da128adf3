using System.Net.WebSockets;
using Nerdbank.Streams;
using SentryVibe.Protocol;
using SentryVibe.Testing;
using StreamJsonRpc;
using Xunit;

namespace SentryVibe.Link.Tests;

/// <summary>
/// The link's transport on its own (<see cref="LinkSocket"/>: JSON-RPC straight on the WebSocket, client masking
/// included), over a socket pair whose bytes never leave the process.
/// </summary>
public sealed class TransportTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Calls_from_both_ends_arrive_intact_and_in_order_big_and_small_mixed()
    {
        await using var pair = await SocketPair.CreateAsync();
        var echo = new Echo();
        using var server = LinkTransport.CreateRpc(pair.Server);
        server.AddLocalRpcTarget(echo);
        server.StartListening();
        using var client = LinkTransport.CreateRpc(pair.Client);
        client.StartListening();

        // Notifications are not awaited one by one: they queue behind each other, and order is all the link promises.
        var sizes = new[] { 1, 3 * 1024 * 1024, 10, 70_000, 4_096, 4_095, 4_097, 1 };
        var sent = sizes.Select((size, i) => $"{i}:" + new string((char)('a' + i), size)).ToArray();
        foreach (var text in sent) await client.NotifyAsync(nameof(Echo.Record), text);
        var back = await client.InvokeAsync<string>(nameof(Echo.Last));

        await Eventually.WaitAsync(() => echo.Received.Count == sent.Length, Wait, "every notification to arrive");
        Assert.Equal(sent, echo.Received);
        Assert.Equal(sent[^1], back);
    }

    [Fact]
    public async Task A_message_over_the_limit_closes_the_link_with_1009_before_it_is_parsed()
    {
        await using var pair = await SocketPair.CreateAsync();
        var echo = new Echo();
        var serverLink = new LinkSocket(pair.Server, maxMessageBytes: 64 * 1024);
        using var server = LinkTransport.CreateRpc(serverLink);
        server.AddLocalRpcTarget(echo);
        server.StartListening();
        using var client = LinkTransport.CreateRpc(pair.Client);
        client.StartListening();

        // The sender may see its own send cut short by the close: that is the refusal, not a failure of the test.
        await Record.ExceptionAsync(() => client.NotifyAsync(nameof(Echo.Record), new string('x', 64 * 1024)));

        await server.Completion.WaitAsync(Wait).ContinueWith(_ => { });
        Assert.StartsWith(LinkCloseReasons.MessageTooBig, serverLink.LocalCloseReason);
        await Eventually.WaitAsync(() => pair.Client.CloseStatus is not null || pair.Client.State is WebSocketState.Aborted, Wait, "the close to reach the client");
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, pair.Client.CloseStatus);
        Assert.Empty(echo.Received);
    }

    [Fact]
    public async Task A_text_message_closes_the_link_as_malformed()
    {
        await using var pair = await SocketPair.CreateAsync();
        var serverLink = new LinkSocket(pair.Server);
        using var server = LinkTransport.CreateRpc(serverLink);
        server.AddLocalRpcTarget(new Echo());
        server.StartListening();

        await pair.Client.SendAsync("""{"jsonrpc":"2.0","method":"Record","params":["x"]}"""u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
        var scratch = new byte[1024];
        var result = await pair.Client.ReceiveAsync(scratch.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Wait);

        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, pair.Client.CloseStatus);
        Assert.StartsWith(LinkCloseReasons.MalformedInput, pair.Client.CloseStatusDescription);
    }

    [Fact]
    public async Task Heartbeats_are_empty_messages_that_keep_the_runner_linked_while_answered_and_end_it_when_not()
    {
        await using var pair = await SocketPair.CreateAsync();
        var echo = new Echo();
        var serverLink = new AnsweringLink(pair.Server);
        using var server = LinkTransport.CreateRpc(serverLink);
        server.AddLocalRpcTarget(echo);
        server.StartListening();
        var clientLink = new LinkSocket(pair.Client);
        using var client = LinkTransport.CreateRpc(clientLink);
        client.StartListening();
        var interval = TimeSpan.FromMilliseconds(500);

        // Answered: five and more without a timeout, and none of them reached JSON-RPC.
        var beating = clientLink.HeartbeatAsync(interval, CancellationToken.None);
        await Eventually.WaitAsync(() => serverLink.Heard >= 5 || beating.IsCompleted, Wait, "five heartbeats to arrive");
        Assert.False(beating.IsCompleted, $"the heartbeat loop ended: {beating.Exception?.InnerException?.Message}");
        Assert.Empty(echo.Received);
        await client.NotifyAsync(nameof(Echo.Record), "after the heartbeats");
        await Eventually.WaitAsync(() => echo.Received.Count == 1, Wait, "a call after the heartbeats to arrive");

        // No longer answered (a broker that hangs, or one from before these heartbeats): the runner gives the link up.
        serverLink.Answer = false;
        var ended = await Record.ExceptionAsync(() => beating.WaitAsync(Wait));
        Assert.IsType<TimeoutException>(ended);
    }

    /// <summary>The broker's end, as far as heartbeats go: it answers each one while <see cref="Answer"/> holds.</summary>
    private sealed class AnsweringLink(WebSocket socket) : LinkSocket(socket)
    {
        private int _heard;

        public int Heard => Volatile.Read(ref _heard);
        public volatile bool Answer = true;

        protected override ValueTask OnHeartbeatAsync()
        {
            Interlocked.Increment(ref _heard);
            return Answer ? SendHeartbeatAsync() : default;
        }
    }

    public sealed class Echo
    {
        public List<string> Received { get; } = [];

        public void Record(string text)
        {
            lock (Received) Received.Add(text);
        }

        public string Last()
        {
            lock (Received) return Received[^1];
        }
    }

    /// <summary>A runner-side (client, masking) and a broker-side WebSocket joined in memory.</summary>
    private sealed class SocketPair : IAsyncDisposable
    {
        private SocketPair(WebSocket client, WebSocket server) => (Client, Server) = (client, server);

        public WebSocket Client { get; }
        public WebSocket Server { get; }

        public static Task<SocketPair> CreateAsync()
        {
            var (a, b) = FullDuplexStream.CreatePair();
            return Task.FromResult(new SocketPair(
                WebSocket.CreateFromStream(a, new WebSocketCreationOptions { IsServer = false }),
                WebSocket.CreateFromStream(b, new WebSocketCreationOptions { IsServer = true })));
        }

        public ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
