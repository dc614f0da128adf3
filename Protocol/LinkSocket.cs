// The runner link's transport: JSON-RPC straight on the WebSocket, one message per binary WebSocket message
// (docs/runner-protocol.md, "Transport"; docs/architecture.md, decisions 4 and 10).
using System.Buffers;
using System.Net.WebSockets;
using Nerdbank.Streams;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;
using StreamJsonRpc.Reflection;

namespace SentryVibe.Protocol;

/// <summary>
/// The link's JSON-RPC message handler: each JSON-RPC message is one binary WebSocket message. A message above the
/// limit closes the socket with 1009 (message too big) before any of it is parsed, a text message closes it with 1003;
/// either ends this link only. An empty message is a heartbeat (docs/runner-protocol.md, "Liveness"): it never reaches
/// JSON-RPC, so an idle link's heartbeats cost neither end a call, a reply or the garbage of either.
/// </summary>
/// <remarks>
/// An idle link holds no buffer: the reader waits with a zero-byte receive, and rents a buffer only once a message has
/// begun to arrive; the buffer goes back to the pool when the formatter is done with the message (it parses arguments
/// in place, after the message is handed over). Sends and the close frame share one lock, so the close never lands in
/// the middle of a message.
/// </remarks>
public class LinkSocket : MessageHandlerBase, IJsonRpcMessageBufferManager
{
    // A message's first buffer; most messages of the link (heartbeats, acks, commands) fit in it.
    private const int FirstBufferBytes = 4 * 1024;

    // Messages this link sends stay far below a megabyte; a bigger one (only a misbehaving peer sends that) is
    // allocated and left to the GC rather than kept in the shared pool.
    private const int LargestPooled = 1024 * 1024;

    private readonly WebSocket _socket;
    private readonly int _maxMessageBytes;
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly Lock _gate = new();
    private (JsonRpcMessage Message, byte[] Buffer)? _parsing; // the message whose arguments still read its buffer
    private long _lastReceived = Environment.TickCount64; // when the last message (a heartbeat or JSON-RPC) arrived

    public LinkSocket(WebSocket socket, int maxMessageBytes = LinkProtocol.MaxMessageBytes)
        : base(LinkTransport.CreateFormatter())
    {
        _socket = socket;
        _maxMessageBytes = maxMessageBytes;
    }

    public WebSocket Socket => _socket;

    /// <summary>Why this end closed the socket, when it did.</summary>
    public string? LocalCloseReason { get; private set; }

    public override bool CanRead => true;
    public override bool CanWrite => true;

    protected override async ValueTask<JsonRpcMessage?> ReadCoreAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_socket.State is not (WebSocketState.Open or WebSocketState.CloseSent)) return null;

            // Waits for the next message without a buffer: the socket reads the frame header into its own.
            var first = await _socket.ReceiveAsync(Memory<byte>.Empty, cancellationToken);
            if (first.MessageType == WebSocketMessageType.Close) return null;
            if (first.MessageType == WebSocketMessageType.Text)
            {
                await CloseAsync(WebSocketCloseStatus.InvalidMessageType, LinkCloseReasons.MalformedInput + ": text frames are not part of the link");
                throw new InvalidDataException("The peer sent a text message on the link.");
            }

            if (first.EndOfMessage)
            {
                // An empty message: the peer's heartbeat.
                Volatile.Write(ref _lastReceived, Environment.TickCount64);
                await OnHeartbeatAsync();
                continue;
            }

            var (buffer, count) = await ReceiveMessageAsync(cancellationToken);
            if (buffer is null) return null;
            Volatile.Write(ref _lastReceived, Environment.TickCount64);
            if (count == 0)
            {
                Return(buffer);
                await OnHeartbeatAsync(); // an empty message in more than one frame
                continue;
            }

            if (buffer[0] != (byte)'{')
            {
                // Not JSON at all: most likely a runner from before link protocol 2, whose mux frames land here.
                Return(buffer);
                await CloseAsync(WebSocketCloseStatus.ProtocolError, LinkCloseReasons.NotJsonRpc);
                throw new InvalidDataException("The peer sent a message that is not a JSON-RPC object.");
            }

            JsonRpcMessage message;
            try
            {
                message = Formatter.Deserialize(new ReadOnlySequence<byte>(buffer, 0, count));
            }
            catch
            {
                Return(buffer);
                throw;
            }

            if (message is IJsonRpcMessageBufferManager)
            {
                // The formatter parses the arguments later, from this buffer: it is returned in DeserializationComplete.
                lock (_gate)
                {
                    if (_parsing is { } earlier) Return(earlier.Buffer);
                    _parsing = (message, buffer);
                }
            }
            else
            {
                Return(buffer);
            }
            return message;
        }
    }

    /// <returns>The whole message in a rented buffer, or no buffer when the socket closed first.</returns>
    private async ValueTask<(byte[]? Buffer, int Count)> ReceiveMessageAsync(CancellationToken cancellationToken)
    {
        var buffer = Rent(FirstBufferBytes);
        var count = 0;
        var ended = false;
        try
        {
            while (!ended)
            {
                if (count == buffer.Length)
                {
                    if (count > _maxMessageBytes)
                    {
                        await CloseAsync(WebSocketCloseStatus.MessageTooBig, LinkCloseReasons.MessageTooBig + $" ({_maxMessageBytes} bytes)");
                        throw new InvalidDataException($"The peer sent a WebSocket message larger than {_maxMessageBytes} bytes.");
                    }
                    var bigger = Rent(Math.Min(count * 2, _maxMessageBytes + 1));
                    buffer.AsSpan(0, count).CopyTo(bigger);
                    Return(buffer);
                    buffer = bigger;
                }
                var result = await _socket.ReceiveAsync(buffer.AsMemory(count), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Return(buffer);
                    return (null, 0);
                }
                count += result.Count;
                ended = result.EndOfMessage;
            }
            if (count > _maxMessageBytes)
            {
                await CloseAsync(WebSocketCloseStatus.MessageTooBig, LinkCloseReasons.MessageTooBig + $" ({_maxMessageBytes} bytes)");
                throw new InvalidDataException($"The peer sent a WebSocket message larger than {_maxMessageBytes} bytes.");
            }
            return (buffer, count);
        }
        catch
        {
            Return(buffer);
            throw;
        }
    }

    void IJsonRpcMessageBufferManager.DeserializationComplete(JsonRpcMessage message)
    {
        byte[]? done = null;
        lock (_gate)
        {
            if (_parsing is { } parsing && ReferenceEquals(parsing.Message, message))
            {
                done = parsing.Buffer;
                _parsing = null;
            }
        }
        if (done is null) return;
        ((IJsonRpcMessageBufferManager)message).DeserializationComplete(message);
        Return(done);
    }

    protected override async ValueTask WriteCoreAsync(JsonRpcMessage content, CancellationToken cancellationToken)
    {
        using var serialized = new Sequence<byte>(ArrayPool<byte>.Shared) { MinimumSpanLength = FirstBufferBytes };
        Formatter.Serialize(serialized, content);
        await SendAsync(serialized.AsReadOnlySequence, content);
    }

    /// <summary>Sends one serialized message as one WebSocket message; <paramref name="content"/> is what it was, for <see cref="OnSent"/>.</summary>
    private async Task SendAsync(ReadOnlySequence<byte> message, JsonRpcMessage content)
    {
        // Not the caller's token: a send cancelled halfway would leave half a message on the socket. Disposal ends it.
        await _send.WaitAsync(DisposalToken);
        try
        {
            await SendWholeAsync(message);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException && _socket.State is not WebSocketState.Open)
        {
            // The link ended under this send: the peer closed it, or it was aborted. Whether the message arrived is told
            // by the peer's answer or by the link's end (JSON-RPC completes a request with its answer when that came
            // first, and with ConnectionLostException otherwise). Throwing here would override an answer the caller
            // already has, such as a refused Hello's reason, with a lost connection.
            return;
        }
        finally
        {
            _send.Release();
        }
        OnSent(content);
    }

    private async ValueTask SendWholeAsync(ReadOnlySequence<byte> message)
    {
        if (message.IsSingleSegment)
        {
            await _socket.SendAsync(message.First, WebSocketMessageType.Binary, endOfMessage: true, DisposalToken);
        }
        else
        {
            var position = message.Start;
            while (message.TryGet(ref position, out var segment))
            {
                await _socket.SendAsync(segment, WebSocketMessageType.Binary, position.GetObject() is null, DisposalToken);
            }
        }
    }

    /// <summary>
    /// An empty message (a heartbeat) arrived. The broker's end answers it with <see cref="SendHeartbeatAsync"/>; the read
    /// of the next message waits for this, so an answer is sent before anything after it is read.
    /// </summary>
    protected virtual ValueTask OnHeartbeatAsync() => default;

    /// <summary>Sends a heartbeat: an empty message, between two others, never inside one.</summary>
    public async ValueTask SendHeartbeatAsync()
    {
        await _send.WaitAsync(DisposalToken);
        try
        {
            await _socket.SendAsync(ReadOnlyMemory<byte>.Empty, WebSocketMessageType.Binary, endOfMessage: true, DisposalToken);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException && _socket.State is not WebSocketState.Open)
        {
            // The link ended; its reader tells.
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>
    /// The runner's heartbeat on a broker that answers empty messages (docs/runner-protocol.md, "Liveness"): one every
    /// <paramref name="interval"/>; throws <see cref="TimeoutException"/> once a heartbeat has gone two intervals with
    /// nothing at all (no answer, no call) arriving after it. Counted from the send, so a tick of this end's timer that
    /// comes late (a starved thread pool, a machine waking from sleep) never passes for a broker that did not answer.
    /// </summary>
    public async Task HeartbeatAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        long? unanswered = null; // when the first heartbeat went out that nothing has arrived after yet
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            var now = Environment.TickCount64;
            if (unanswered is { } sent && Volatile.Read(ref _lastReceived) >= sent) unanswered = null;
            if (now - unanswered >= (long)(interval * 2).TotalMilliseconds) throw new TimeoutException("The broker did not answer a heartbeat in time.");
            unanswered ??= now;
            await SendHeartbeatAsync();
        }
    }

    /// <summary>Called once a message has been handed to the socket whole.</summary>
    protected virtual void OnSent(JsonRpcMessage content)
    {
    }

    protected override ValueTask FlushAsync(CancellationToken cancellationToken) => default;

    /// <summary>Sends a close frame once (best effort, bounded in time, never inside a message); the peer learns the reason.</summary>
    public async Task CloseAsync(WebSocketCloseStatus status, string reason)
    {
        LocalCloseReason ??= reason;
        // The close description is limited to 123 UTF-8 bytes by RFC 6455.
        var description = reason.Length > 120 ? reason[..120] : reason;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await _send.WaitAsync(timeout.Token);
            try
            {
                if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await _socket.CloseOutputAsync(status, description, timeout.Token);
                }
            }
            finally
            {
                _send.Release();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            _socket.Abort();
        }
    }

    protected override void DisposeReader()
    {
        lock (_gate)
        {
            if (_parsing is { } parsing) Return(parsing.Buffer);
            _parsing = null;
        }
        base.DisposeReader();
    }

    private static byte[] Rent(int length) =>
        length <= LargestPooled ? ArrayPool<byte>.Shared.Rent(length) : GC.AllocateUninitializedArray<byte>(length);

    private static void Return(byte[] array)
    {
        if (array.Length <= LargestPooled) ArrayPool<byte>.Shared.Return(array);
    }
}
