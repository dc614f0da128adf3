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

    /// <summary>The token may not link as the runner id the Hello names; retrying cannot help (docs/runner-protocol.md).</summary>
    public const int IdentityRefused = -31006;
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
    public const string IdentityRefused = "runner token not valid for this runner id";
    public const string TokenRevoked = "runner token revoked";
    public const string HelloOverLimits = "Hello field over its limit";
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
    public static JsonRpc CreateRpc(Stream channel, int maxMessageBytes = LinkProtocol.MaxMessageBytes) =>
        CreateRpc(new LengthHeaderMessageHandler(channel, new MessageLengthGuardStream(channel, maxMessageBytes), CreateFormatter()));

    /// <summary>The same connection over a message handler of the caller's (the broker's watches its replies go out).</summary>
    public static JsonRpc CreateRpc(IJsonRpcMessageHandler handler) => new(handler)
    {
        CancelLocallyInvokedMethodsWhenConnectionIsClosed = true,
    };

    /// <summary>
    /// The link's formatter. One options instance for every connection: System.Text.Json caches type metadata per
    /// instance, and a copy per link cost tens of kilobytes per runner on a broker holding a thousand.
    /// </summary>
    public static SystemTextJsonFormatter CreateFormatter() => new() { JsonSerializerOptions = RpcJsonOptions };
}

/// <summary>
/// A WebSocket as a byte stream for the mux, enforcing a maximum WebSocket message size: a bigger message closes
/// the socket with 1009 (message too big) and faults the read, which ends this link only.
/// </summary>
/// <remarks>
/// Writes are gathered until <see cref="FlushAsync(CancellationToken)"/> and go out as one WebSocket message: the mux
/// writes each of its frames (at most 20 KiB) and flushes after every batch it has, so a busy channel (a preview
/// download) sends one message per batch rather than one per frame, saving a send, a frame header and a mask each.
/// Buffers are rented only while a write or a long message is in flight, so an idle link holds none.
/// Disposing the stream leaves the socket to its owner.
/// </remarks>
public sealed class WebSocketLinkStream(WebSocket socket, int maxMessageBytes = LinkProtocol.MaxMessageBytes) : Stream
{
    /// <summary>A message goes out once this much is gathered, even before the mux flushes.</summary>
    internal const int MaxGatheredBytes = 256 * 1024;

    private readonly SemaphoreSlim _send = new(1, 1);
    private long _bytesSent;
    private (long Total, TaskCompletionSource Done)? _sentWaiter;
    private byte[]? _gathered;
    private int _gatheredCount;
    private byte[]? _held;
    private int _heldOffset;
    private int _heldCount;

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
        if (_held is not null) return TakeHeld(buffer.Span);

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
            var held = Rent(Math.Max(64 * 1024, result.Count * 2));
            buffer.Span[..result.Count].CopyTo(held);
            var count = result.Count;
            try
            {
                while (!result.EndOfMessage)
                {
                    if (count == held.Length)
                    {
                        if (count >= maxMessageBytes + 1) break;
                        var bigger = Rent(Math.Min(count * 2, maxMessageBytes + 1));
                        held.AsSpan(0, count).CopyTo(bigger);
                        Return(held);
                        held = bigger;
                    }
                    result = await socket.ReceiveAsync(held.AsMemory(count), cancellationToken);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        Return(held);
                        return 0;
                    }
                    count += result.Count;
                }
                if (count > maxMessageBytes)
                {
                    await CloseAsync(WebSocketCloseStatus.MessageTooBig, LinkCloseReasons.MessageTooBig + $" ({maxMessageBytes} bytes)");
                    throw new IOException($"The peer sent a WebSocket message larger than {maxMessageBytes} bytes.");
                }
            }
            catch
            {
                Return(held);
                throw;
            }
            (_held, _heldOffset, _heldCount) = (held, 0, count);
            return TakeHeld(buffer.Span);
        }
    }

    private int TakeHeld(Span<byte> destination)
    {
        var n = Math.Min(_heldCount - _heldOffset, destination.Length);
        _held.AsSpan(_heldOffset, n).CopyTo(destination);
        _heldOffset += n;
        if (_heldOffset == _heldCount)
        {
            // Back to the pool: a link keeps no buffer between messages.
            Return(_held!);
            _held = null;
        }
        return n;
    }

    // Messages this transport sends stay far below a megabyte; anything bigger (only a misbehaving peer sends that)
    // is allocated and left to the GC rather than kept in the shared pool.
    private const int LargestPooled = 1024 * 1024;

    private static byte[] Rent(int length) =>
        length <= LargestPooled ? ArrayPool<byte>.Shared.Rent(length) : GC.AllocateUninitializedArray<byte>(length);

    private static void Return(byte[] array)
    {
        if (array.Length <= LargestPooled) ArrayPool<byte>.Shared.Return(array);
    }

    private async Task RefuseTextAsync(ValueWebSocketReceiveResult result)
    {
        if (result.MessageType != WebSocketMessageType.Text) return;
        await CloseAsync(WebSocketCloseStatus.InvalidMessageType, LinkCloseReasons.MalformedInput + ": text frames are not part of the link");
        throw new IOException("The peer sent a text frame on the link.");
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_gathered is null && buffer.Length >= MaxGatheredBytes)
        {
            await SendAsync(buffer, cancellationToken);
            return;
        }

        if (_gathered is null)
        {
            _gathered = Rent(Math.Max(buffer.Length, 32 * 1024));
        }
        else if (_gathered.Length - _gatheredCount < buffer.Length)
        {
            var bigger = Rent(Math.Max(_gatheredCount + buffer.Length, _gathered.Length * 2));
            _gathered.AsSpan(0, _gatheredCount).CopyTo(bigger);
            Return(_gathered);
            _gathered = bigger;
        }
        buffer.Span.CopyTo(_gathered.AsSpan(_gatheredCount));
        _gatheredCount += buffer.Length;
        if (_gatheredCount >= MaxGatheredBytes) await FlushAsync(cancellationToken);
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_gathered is not { } gathered) return;
        try
        {
            await SendAsync(gathered.AsMemory(0, _gatheredCount), cancellationToken);
        }
        finally
        {
            _gathered = null;
            _gatheredCount = 0;
            Return(gathered);
        }
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        await _send.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken);
            var sent = Interlocked.Add(ref _bytesSent, message.Length);
            if (_sentWaiter is { } waiter && sent >= waiter.Total)
            {
                _sentWaiter = null;
                waiter.Done.TrySetResult();
            }
        }
        finally
        {
            _send.Release();
        }
    }

    /// <summary>Bytes this stream has handed to the socket so far.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>
    /// Completes once <see cref="BytesSent"/> reaches <paramref name="total"/>: what the mux writes reaches the socket
    /// through its own pipes, so a caller that knows how much it put in waits here for it to be out. One waiter at a time.
    /// </summary>
    public async Task SentAtLeastAsync(long total, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _send.WaitAsync(cancellationToken);
        try
        {
            if (BytesSent >= total) return;
            _sentWaiter = (total, done);
        }
        finally
        {
            _send.Release();
        }
        await done.Task.WaitAsync(cancellationToken);
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
    public override void Flush() => FlushAsync(CancellationToken.None).GetAwaiter().GetResult();
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
