// The transport both ends of the runner link share: WebSocket → byte stream (with the per-message limit) →
// MultiplexingStream → "rpc" channel → StreamJsonRpc. One place, so broker and runner cannot drift apart.
using System.Buffers;
using System.Buffers.Binary;
using System.Net.WebSockets;
using System.Text.Json;
using Nerdbank.Streams;
using StreamJsonRpc;

namespace SentryVibe.Protocol;

/// <summary>JSON-RPC error codes of the link (application range, outside the reserved -32768..-32000).</summary>
public static class LinkErrorCodes
{
    public const int ProtocolMismatch = -31001;
    public const int HelloRequired = -31002;
    public const int RateLimited = -31003;
    public const int InvalidRequest = -31004;
    public const int Unavailable = -31005;
}

/// <summary>Close reasons the broker sends, so a runner can tell the user why its link ended.</summary>
public static class LinkCloseReasons
{
    public const string MessageTooBig = "message exceeds the link's size limit";
    public const string ProtocolMismatch = "protocol version not supported";
    public const string Replaced = "replaced by a newer connection of the same runner";
    public const string HelloTimeout = "no Hello within the allowed time";
    public const string HeartbeatTimeout = "no heartbeat within the allowed time";
    public const string MalformedInput = "malformed input";
    public const string ShuttingDown = "broker shutting down";
}

public static class LinkTransport
{
    /// <summary>The mux protocol: v3 has no handshake round trip, has back-pressure and half-close.</summary>
    public static MultiplexingStream.Options MuxOptions() => new() { ProtocolMajorVersion = 3 };

    private static readonly JsonSerializerOptions RpcJsonOptions = new(LinkProtocol.JsonOptions);

    public static Task<MultiplexingStream> CreateMuxAsync(Stream stream, CancellationToken cancellationToken) =>
        MultiplexingStream.CreateAsync(stream, MuxOptions(), cancellationToken);

    /// <summary>
    /// Creates (not yet listening) the JSON-RPC connection on a channel: length-prefixed messages, System.Text.Json with
    /// the wire's serializer options, and a reader that refuses any message above <paramref name="maxMessageBytes"/>.
    /// </summary>
    public static JsonRpc CreateRpc(Stream channel, int maxMessageBytes = LinkProtocol.MaxMessageBytes)
    {
        // One options instance for every connection: System.Text.Json caches type metadata per instance, and a copy
        // per link cost tens of kilobytes per runner on a broker holding a thousand.
        var formatter = new SystemTextJsonFormatter { JsonSerializerOptions = RpcJsonOptions };
        var handler = new LengthHeaderMessageHandler(channel, new MessageLengthGuardStream(channel, maxMessageBytes), formatter);
        return new JsonRpc(handler)
        {
            CancelLocallyInvokedMethodsWhenConnectionIsClosed = true,
        };
    }
}

/// <summary>
/// A WebSocket as a byte stream for the mux, enforcing a maximum WebSocket message size: a bigger message closes
/// the socket with 1009 (message too big) and faults the read, which ends this link only.
/// </summary>
/// <remarks>Disposing the stream leaves the socket to its owner.</remarks>
public sealed class WebSocketLinkStream(WebSocket socket, int maxMessageBytes = LinkProtocol.MaxMessageBytes) : Stream
{
    private readonly SemaphoreSlim _send = new(1, 1);
    private ArrayBufferWriter<byte> _held = new();
    private int _heldOffset;

    public WebSocket Socket => socket;

    /// <summary>Why this end closed the socket, when it did.</summary>
    public string? LocalCloseReason { get; private set; }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_held.WrittenCount > _heldOffset) return TakeHeld(buffer.Span);

        while (true)
        {
            if (socket.State is not (WebSocketState.Open or WebSocketState.CloseSent)) return 0;
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close) return 0;
            await RefuseTextAsync(result);
            if (result.EndOfMessage)
            {
                if (result.Count > 0) return result.Count;
                continue;
            }

            // A message longer than one read: the whole of it is received (up to the limit) before the mux sees any
            // of it, so an oversized message is refused as such and never half-parsed.
            _held.Clear();
            _heldOffset = 0;
            _held.Write(buffer.Span[..result.Count]);
            while (!result.EndOfMessage)
            {
                result = await socket.ReceiveAsync(_held.GetMemory(64 * 1024), cancellationToken);
                if (result.MessageType == WebSocketMessageType.Close) return 0;
                _held.Advance(result.Count);
                if (_held.WrittenCount > maxMessageBytes)
                {
                    _held.Clear();
                    await CloseAsync(WebSocketCloseStatus.MessageTooBig, LinkCloseReasons.MessageTooBig + $" ({maxMessageBytes} bytes)");
                    throw new IOException($"The peer sent a WebSocket message larger than {maxMessageBytes} bytes.");
                }
            }
            return TakeHeld(buffer.Span);
        }
    }

    private int TakeHeld(Span<byte> destination)
    {
        var available = _held.WrittenSpan[_heldOffset..];
        var n = Math.Min(available.Length, destination.Length);
        available[..n].CopyTo(destination);
        _heldOffset += n;
        if (_heldOffset == _held.WrittenCount)
        {
            // Do not keep a big buffer alive after a big message.
            if (_held.Capacity > 1024 * 1024) _held = new ArrayBufferWriter<byte>();
            else _held.Clear();
            _heldOffset = 0;
        }
        return n;
    }

    private async Task RefuseTextAsync(ValueWebSocketReceiveResult result)
    {
        if (result.MessageType != WebSocketMessageType.Text) return;
        await CloseAsync(WebSocketCloseStatus.InvalidMessageType, LinkCloseReasons.MalformedInput + ": text frames are not part of the link");
        throw new IOException("The peer sent a text frame on the link.");
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _send.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(buffer, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>Sends a close frame once (best effort, bounded in time); the peer learns the reason.</summary>
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
                if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(status, description, timeout.Token);
                }
            }
            finally
            {
                _send.Release();
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
            socket.Abort();
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();
    public override void Flush() { }
    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    // The socket is not disposed with the stream: the mux disposes its stream when it faults, and the link's owner
    // still has to send the close frame that tells the peer why.
}

/// <summary>
/// Reads a length-prefixed JSON-RPC stream and fails as soon as a header announces a message above the limit,
/// before anything is buffered for it (the mux splits big messages into small frames, so the WebSocket limit
/// alone would not catch them).
/// </summary>
public sealed class MessageLengthGuardStream(Stream inner, int maxMessageBytes) : Stream
{
    private readonly byte[] _header = new byte[4];
    private int _headerFilled;
    private long _payloadRemaining;

    public override bool CanRead => true;
    public override bool CanWrite => false;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Inspect(buffer.Span[..read]);
        return read;
    }

    private void Inspect(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            if (_payloadRemaining > 0)
            {
                var take = (int)Math.Min(_payloadRemaining, data.Length);
                _payloadRemaining -= take;
                data = data[take..];
                continue;
            }

            var need = Math.Min(4 - _headerFilled, data.Length);
            data[..need].CopyTo(_header.AsSpan(_headerFilled));
            _headerFilled += need;
            data = data[need..];
            if (_headerFilled < 4) continue;

            _headerFilled = 0;
            var length = BinaryPrimitives.ReadInt32BigEndian(_header);
            if (length < 0 || length > maxMessageBytes)
            {
                throw new InvalidDataException($"A JSON-RPC message of {length} bytes exceeds the link's limit of {maxMessageBytes} bytes.");
            }
            _payloadRemaining = length;
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        var read = inner.Read(buffer, offset, count);
        Inspect(buffer.AsSpan(offset, read));
        return read;
    }

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
