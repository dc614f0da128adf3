using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace SentryVibe.Broker.Previews;

/// <summary>
/// Kestrel's transport buffers in 64 KiB blocks instead of its own 4 KiB ones. Kestrel reads a socket into whatever is
/// left of its current block (at least 2 KiB), so with 4 KiB blocks a preview download arriving over a runner's link
/// took one receive call, pipe flush and WebSocket read per ~2 KiB: the largest cost of the relay after the copies.
/// </summary>
/// <remarks>
/// A block is rented only while bytes wait in a connection's pipe (Kestrel waits for data before it takes one), so an
/// idle runner link or keep-alive connection holds none. Blocks are kept for reuse, like Kestrel's own pool: renting
/// them from the shared array pool instead left a stream of 64 KiB garbage whenever more were in use than it keeps,
/// which cost ~40 MB of broker RSS with 1,000 idle runners. Blocks that sat unused for a whole period are released.
/// </remarks>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>, IDisposable
{
    public const int BlockSize = 64 * 1024;

    private static readonly TimeSpan EvictionPeriod = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<LargeBlockMemoryPool, bool> _pools = new();
    private readonly Timer _eviction;

    public LargeBlockMemoryPoolFactory()
    {
        _eviction = new Timer(_ =>
        {
            foreach (var pool in _pools.Keys) pool.EvictIdle();
        }, null, EvictionPeriod, EvictionPeriod);
    }

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        var pool = new LargeBlockMemoryPool(this);
        _pools.TryAdd(pool, true);
        return pool;
    }

    /// <summary>Releases every block no connection holds now (the broker went quiet: <see cref="IdleMemoryTrim"/>).</summary>
    public void ReleaseFree()
    {
        foreach (var pool in _pools.Keys) pool.ReleaseFree();
    }

    public void Dispose() => _eviction.Dispose();

    internal sealed class LargeBlockMemoryPool(LargeBlockMemoryPoolFactory factory) : MemoryPool<byte>
    {
        private readonly ConcurrentQueue<Block> _free = new();
        private int _freeCount;
        private int _fewestFree; // the fewest blocks free at any moment since the last eviction
        private volatile bool _disposed;

        internal int FreeCount => Volatile.Read(ref _freeCount);

        // Bigger requests never come from Kestrel's sockets (it asks for 4 KiB); a pipe serves them from the array pool.
        public override int MaxBufferSize => BlockSize;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_free.TryDequeue(out var block))
            {
                var free = Interlocked.Decrement(ref _freeCount);
                if (free < Volatile.Read(ref _fewestFree)) Volatile.Write(ref _fewestFree, free);
                return block;
            }
            Volatile.Write(ref _fewestFree, 0);
            return new Block(this);
        }

        internal void Return(Block block)
        {
            if (_disposed) return;
            _free.Enqueue(block);
            Interlocked.Increment(ref _freeCount);
        }

        /// <summary>Releases the blocks no connection needed since the last call.</summary>
        internal void EvictIdle() => Release(Interlocked.Exchange(ref _fewestFree, FreeCount));

        internal void ReleaseFree() => Release(int.MaxValue);

        private void Release(int blocks)
        {
            for (; blocks > 0 && _free.TryDequeue(out _); blocks--) Interlocked.Decrement(ref _freeCount);
            Volatile.Write(ref _fewestFree, FreeCount);
        }

        protected override void Dispose(bool disposing)
        {
            _disposed = true;
            factory._pools.TryRemove(this, out _);
            _free.Clear();
        }
    }

    /// <summary>A pinned 64 KiB array that goes back to its pool when Kestrel is done with it.</summary>
    internal sealed class Block(LargeBlockMemoryPool pool) : IMemoryOwner<byte>
    {
        private readonly byte[] _array = GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true);

        public Memory<byte> Memory => _array;

        public void Dispose() => pool.Return(this);
    }
}
