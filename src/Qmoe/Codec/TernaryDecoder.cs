using System.Runtime.Intrinsics;

namespace Qmoe.Codec;

/// <summary>
/// dict16 decoding back to trits. <see cref="DecodeRowReference"/> reads the entry words bit by bit (the truth for
/// tests); <see cref="DecodeRow"/> copies whole 32-byte strides of <see cref="CodeDictionary.DecodeTable"/>.
/// Both require the row's codes to cover it exactly: the last code starts before the row end and reaches it.
/// </summary>
public static unsafe class TernaryDecoder
{
    /// <summary>Decodes every row (multi-threaded over rows) into trits [rows, cols].</summary>
    public static byte[] Decode(EncodedMatrix m, CodeDictionary dict, int threads = 0)
    {
        var trits = new byte[(long)m.Rows * m.Cols];
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : -1 };
        Parallel.For(0, m.Rows, options, r => DecodeRow(m.Row(r), dict, trits.AsSpan((int)((long)r * m.Cols), m.Cols)));
        return trits;
    }

    /// <summary>Scalar reference: decodes one row's codes into <paramref name="row"/> (its length is the row width).</summary>
    public static void DecodeRowReference(ReadOnlySpan<ushort> codes, CodeDictionary dict, Span<byte> row)
    {
        int o = 0;
        for (int k = 0; k < codes.Length; k++)
        {
            if (o >= row.Length) throw Overrun(k, codes.Length, row.Length);
            int c = codes[k], n = 2 * dict.PairCount(c);
            for (int i = 0; i < n && o + i < row.Length; i++) row[o + i] = (byte)dict.Trit(c, i);
            o += n;
        }
        if (o < row.Length) throw Short(o, row.Length);
    }

    /// <summary>Fast decode of one row via the expanded table (vector copies, scalar near the row end).</summary>
    public static void DecodeRow(ReadOnlySpan<ushort> codes, CodeDictionary dict, Span<byte> row)
    {
        var table = dict.DecodeTable;
        var entries = dict.Entries;
        int cols = row.Length, o = 0;
        fixed (byte* t = table)
        fixed (byte* dst = row)
        {
            for (int k = 0; k < codes.Length; k++)
            {
                if (o >= cols) throw Overrun(k, codes.Length, cols);
                int c = codes[k];
                byte* src = t + c * CodeDictionary.DecodeStride;
                if (o + CodeDictionary.DecodeStride <= cols)
                {
                    // Whole-stride copy; the bytes past this entry are overwritten by the next one.
                    if (Vector256.IsHardwareAccelerated) Vector256.Load(src).Store(dst + o);
                    else
                    {
                        Vector128.Load(src).Store(dst + o);
                        Vector128.Load(src + 16).Store(dst + o + 16);
                    }
                }
                else
                {
                    int n = Math.Min(2 * (int)(entries[2 * c] & 15), cols - o);
                    for (int i = 0; i < n; i++) dst[o + i] = src[i];
                }
                o += 2 * (int)(entries[2 * c] & 15);
            }
        }
        if (o < cols) throw Short(o, cols);
    }

    /// <summary>Trits covered by <paramref name="codes"/> (2 per pair, including any padding).</summary>
    public static long CoveredTrits(ReadOnlySpan<ushort> codes, CodeDictionary dict)
    {
        long n = 0;
        var entries = dict.Entries;
        foreach (var c in codes) n += 2 * (entries[2 * c] & 15);
        return n;
    }

    private static QmoeException Overrun(int k, int count, int cols) =>
        new($"decode: code {k} of {count} starts past the row end ({cols} trits)");

    private static QmoeException Short(int covered, int cols) =>
        new($"decode: codes cover {covered} trits of a {cols}-trit row");
}
