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

    /// <summary>Unpacks trits [first, first + trits.Length) of <paramref name="packed"/> (whose first byte holds trits 0–3).</summary>
    public static void Unpack(ReadOnlySpan<byte> packed, Span<byte> trits, long first = 0)
    {
        for (long i = 0, j = first; i < trits.Length; i++, j++) trits[(int)i] = (byte)((packed[(int)(j >> 2)] >> (int)(2 * (j & 3))) & 3);
    }

    /// <summary>The first <paramref name="count"/> trits of <paramref name="packed"/>, one byte each.</summary>
    public static byte[] Unpack(ReadOnlySpan<byte> packed, long count)
    {
        var trits = new byte[count];
        Unpack(packed, trits);
        return trits;
    }

    /// <summary>
    /// The index of the first invalid trit of <paramref name="packed"/> holding <paramref name="trits"/> trits: a 2-bit
    /// field equal to 3, or a non-zero padding field past the end; -1 when every field is valid.
    /// </summary>
    public static long FirstInvalid(ReadOnlySpan<byte> packed, long trits)
    {
        if (packed.Length != PackedLength(trits)) throw new ArgumentException($"{packed.Length} packed bytes for {trits} trits");
        for (int i = 0; i < packed.Length; i++)
        {
            int b = packed[i];
            if ((b & (b >> 1) & 0x55) == 0) continue; // no field is 3 (both bits set)
            for (int k = 0; k < 4; k++) if ((b >> (2 * k) & 3) == 3) return 4L * i + k;
        }
        int tail = (int)(trits & 3);
        if (tail != 0 && packed[^1] >> (2 * tail) != 0) return trits;
        return -1;
    }
}
