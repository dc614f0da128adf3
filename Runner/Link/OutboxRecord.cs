// The outbox's on-disk record, [u32 length][u32 crc32][RunnerEvent JSON], written and read here only: a crash
// mid-write leaves a torn tail whose CRC fails, and reading stops there.
using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using SentryVibe.Protocol;

namespace SentryVibe.Runner.Link;

internal static class OutboxRecord
{
    public const int HeaderBytes = 8;

    public static void Append(ArrayBufferWriter<byte> buffer, RunnerEvent e)
    {
        buffer.GetSpan(HeaderBytes)[..HeaderBytes].Clear();
        buffer.Advance(HeaderBytes);
        var start = buffer.WrittenCount;
        using (var writer = new Utf8JsonWriter(buffer))
        {
            JsonSerializer.Serialize(writer, e, LinkProtocol.JsonOptions);
        }
        // The buffer may have moved while growing: patch the header through the written memory.
        var written = System.Runtime.InteropServices.MemoryMarshal.AsMemory(buffer.WrittenMemory).Span;
        var payload = written[start..];
        BinaryPrimitives.WriteUInt32LittleEndian(written[(start - HeaderBytes)..], (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(written[(start - 4)..], Crc32.Compute(payload));
    }

    /// <summary>
    /// Hands each whole record at the start of <paramref name="bytes"/> to <paramref name="onRecord"/> (with its payload
    /// length) and returns where the whole records end: the file's length, or the start of a torn tail.
    /// </summary>
    public static int ReadWhole(ReadOnlySpan<byte> bytes, Action<RunnerEvent, int> onRecord)
    {
        var offset = 0;
        while (offset + HeaderBytes <= bytes.Length)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes[offset..]);
            var crc = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(offset + 4)..]);
            if (length <= 0 || offset + HeaderBytes + length > bytes.Length) break;
            var payload = bytes.Slice(offset + HeaderBytes, length);
            if (Crc32.Compute(payload) != crc) break;
            var e = JsonSerializer.Deserialize<RunnerEvent>(payload, LinkProtocol.JsonOptions);
            if (e is null) break;
            onRecord(e, length);
            offset += HeaderBytes + length;
        }
        return offset;
    }
}

/// <summary>CRC-32 (IEEE), enough to tell a torn record from a whole one.</summary>
internal static class Crc32
{
    private static readonly uint[] Table = Enumerable.Range(0, 256).Select(i =>
    {
        var c = (uint)i;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFFu;
    }
}
