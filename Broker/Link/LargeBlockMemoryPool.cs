using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace SentryVibe.Broker.Link;

/// <summary>
/// Kestrel's transport buffers in 64 KiB blocks from the shared array pool instead of its own 4 KiB ones. Kestrel
/// reads a socket into whatever is left of its current block (at least 2 KiB), so with 4 KiB blocks a preview
/// download arriving over a runner's link took one receive call, pipe flush and WebSocket read per ~2 KiB: the
/// largest cost of the relay after the copies themselves. A block is rented only while bytes wait in a connection's
/// pipe (Kestrel waits for data before it allocates), so an idle runner link or keep-alive connection holds none.
/// </summary>
public sealed class LargeBlockMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    public const int BlockSize = 64 * 1024;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new LargeBlockMemoryPool();

    private sealed class LargeBlockMemoryPool : MemoryPool<byte>
    {
        public override int MaxBufferSize => Array.MaxLength;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1) =>
            new Block(ArrayPool<byte>.Shared.Rent(Math.Max(minBufferSize, BlockSize)));

        protected override void Dispose(bool disposing)
        {
        }
    }

    private sealed class Block(byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } array) ArrayPool<byte>.Shared.Return(array);
        }
    }
}
