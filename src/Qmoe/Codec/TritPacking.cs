namespace Qmoe.Codec;

/// <summary>Trits packed four per byte (2 bits each, first trit in the low bits): the writer's spool format.</summary>
internal static class TritPacking
{
    public static long PackedLength(long trits) => (trits + 3) / 4;

    public static byte[] Pack(ReadOnlySpan<byte> trits)
    {
        var packed = new byte[PackedLength(trits.Length)];
        for (int i = 0; i < trits.Length; i++) packed[i >> 2] |= (byte)(trits[i] << (2 * (i & 3)));
        return packed;
    }

    public static void Unpack(ReadOnlySpan<byte> packed, Span<byte> trits)
    {
        for (int i = 0; i < trits.Length; i++) trits[i] = (byte)((packed[i >> 2] >> (2 * (i & 3))) & 3);
    }
}
