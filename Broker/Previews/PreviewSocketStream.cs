using System.Net.WebSockets;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// A runner's preview socket as the byte stream the relay forwards a connection over: each write is one binary message,
/// reads hand over what arrives, the runner's close frame is the end of the stream (the dev server closed its side).
/// Disposing sends the close frame once; <see cref="Completion"/> then ends the request that holds the socket.
/// A spare socket (docs/runner-protocol.md, "Spare preview sockets") waits for its project in <see cref="WatchIdle"/> and
/// gets it in <see cref="BindAsync"/> before it is read or written.
/// </summary>
public sealed class PreviewSocketStream(WebSocket socket) : Stream
{
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task<ValueWebSocketReceiveResult>? _watch;
    private int _disposed;

    /// <summary>Completes once the stream is disposed.</summary>
    public Task Completion => _completion.Task;

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>
    /// Watches an idle spare socket without a buffer: completes when the runner closes it, breaks, or sends anything before
    /// it was given a project (which no honest runner does). A socket bound later reads on from this receive.
    /// </summary>
    internal Task WatchIdle() => _watch = socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).AsTask();

    /// <summary>Gives a spare socket its project: one text message, the id, after which the bytes flow as on any preview socket.</summary>
    internal async Task BindAsync(Guid projectId, CancellationToken cancellationToken)
    {
        await _send.WaitAsync(cancellationToken);
        try
        {
            await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes(projectId.ToString("D")), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
        finally
        {
            _send.Release();
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_watch is { } watch)
        {
            _watch = null;
            if ((await watch).MessageType == WebSocketMessageType.Close) return Closed();
        }
        while (true)
        {
            if (socket.State is not (WebSocketState.Open or WebSocketState.CloseSent)) return 0;
            var result = await socket.ReceiveAsync(buffer, cancellationToken);
            if (result.MessageType == WebSocketMessageType.Close) return Closed();
            if (result.Count > 0 || buffer.Length == 0) return result.Count;
        }
    }

    /// <summary>The runner's close frame: the end of the stream, or, with a reason, its refusal (a spare bound to a project it has no dev server for).</summary>
    private int Closed() =>
        socket.CloseStatus is not (null or WebSocketCloseStatus.NormalClosure) && socket.CloseStatusDescription is { Length: > 0 } reason
            ? throw new PreviewRefusedException(reason)
            : 0;

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return;
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

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _send.WaitAsync(timeout.Token);
            try
            {
                if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
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
        finally
        {
            _completion.TrySetResult();
            await base.DisposeAsync();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Volatile.Read(ref _disposed) == 0) DisposeAsync().AsTask().GetAwaiter().GetResult();
        base.Dispose(disposing);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();
    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}

/// <summary>The runner closed a preview socket with a reason instead of serving it (a spare given a project it has no dev server for).</summary>
public sealed class PreviewRefusedException(string reason) : IOException(reason);
