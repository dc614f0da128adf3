using System.Collections.Concurrent;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Opening one more preview channel would pass a cap (per preview or per runner, see <see cref="Link.BrokerOptions"/>);
/// the relay answers that request 503 with Retry-After and leaves the open ones alone.
/// </summary>
public sealed class PreviewChannelLimitException(string scope, int limit)
    : Exception($"This {scope} already has {limit} preview connections open.")
{
    public string Scope { get; } = scope;
    public int Limit { get; } = limit;
}

/// <summary>Open preview channels per key (the preview id); a key is dropped when its count falls back to 0.</summary>
public sealed class PreviewChannelCounts
{
    private readonly ConcurrentDictionary<string, int> _open = new(StringComparer.Ordinal);
    private int _total;

    /// <summary>Channels open now, all keys together.</summary>
    public int Total => Volatile.Read(ref _total);

    public int OpenFor(string key) => _open.TryGetValue(key, out var count) ? count : 0;

    public bool TryTake(string key, int limit)
    {
        while (true)
        {
            if (_open.TryGetValue(key, out var count))
            {
                if (count >= limit) return false;
                if (_open.TryUpdate(key, count + 1, count)) break;
            }
            else
            {
                if (limit <= 0) return false;
                if (_open.TryAdd(key, 1)) break;
            }
        }
        Interlocked.Increment(ref _total);
        return true;
    }

    public void Release(string key)
    {
        while (true)
        {
            if (!_open.TryGetValue(key, out var count)) return;
            if (count <= 1 ? _open.TryRemove(KeyValuePair.Create(key, count)) : _open.TryUpdate(key, count - 1, count)) break;
        }
        Interlocked.Decrement(ref _total);
    }
}

/// <summary>What a preview channel holds (its places under the caps): given back exactly once, whichever path ends it.</summary>
public sealed class PreviewChannelSlot(Action? release) : IDisposable
{
    private Action? _release = release;
    private readonly List<Action> _more = [];

    /// <summary>Adds a release to run with the others (not after the slot was given back).</summary>
    public void Add(Action release)
    {
        lock (_more) _more.Add(release);
    }

    public void Dispose()
    {
        var first = Interlocked.Exchange(ref _release, null);
        Action[] more;
        lock (_more)
        {
            more = [.. _more];
            _more.Clear();
        }
        first?.Invoke();
        foreach (var release in more) release();
    }
}

/// <summary>A preview channel's stream that gives its slot back when the forwarder closes the connection.</summary>
public sealed class PreviewChannelStream(Stream inner, PreviewChannelSlot slot) : Stream
{
    public override bool CanRead => inner.CanRead;
    public override bool CanWrite => inner.CanWrite;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
    public override int Read(Span<byte> buffer) => inner.Read(buffer);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.WriteAsync(buffer, offset, count, cancellationToken);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(buffer, cancellationToken);
    public override Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken) =>
        inner.CopyToAsync(destination, bufferSize, cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        try
        {
            if (disposing) inner.Dispose();
        }
        finally
        {
            slot.Dispose();
            base.Dispose(disposing);
        }
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await inner.DisposeAsync();
        }
        finally
        {
            slot.Dispose();
            GC.SuppressFinalize(this);
        }
    }
}
