namespace Qmoe.Codec;

/// <summary>Counts of the three trit values of a trit stream, with its zero fraction and empirical entropy.</summary>
public readonly record struct TritStatistics(long Zeros, long Mins, long Maxes)
{
    public long Count => Zeros + Mins + Maxes;
    public double ZeroFraction => Count == 0 ? 0 : (double)Zeros / Count;

    /// <summary>Empirical entropy in bits per trit: the size a perfect order-0 entropy coder would reach.</summary>
    public double EntropyBits
    {
        get
        {
            double h = 0;
            foreach (long n in (ReadOnlySpan<long>)[Zeros, Mins, Maxes])
                if (n > 0) { double p = (double)n / Count; h -= p * Math.Log2(p); }
            return h;
        }
    }

    public static TritStatistics operator +(TritStatistics a, TritStatistics b) =>
        new(a.Zeros + b.Zeros, a.Mins + b.Mins, a.Maxes + b.Maxes);

    /// <summary>Counts the trits of a plain trit array.</summary>
    public static TritStatistics Of(ReadOnlySpan<byte> trits)
    {
        long zeros = trits.Count((byte)0), mins = trits.Count((byte)1);
        return new(zeros, mins, trits.Length - zeros - mins);
    }

    /// <summary>
    /// Counts the trits of an encoded matrix without decoding it: per-code counts summed over all codes, minus the
    /// padding trits the last code of each row covers past the row end (always zeros for a well-formed row, but
    /// taken from the entry so corrupt padding is not miscounted). Rows must cover their width (see the reader).
    /// </summary>
    public static TritStatistics OfCodes(ReadOnlySpan<ushort> codes, ReadOnlySpan<int> rowOffsets, int cols, CodeDictionary dict)
    {
        var perCode = dict.TritCounts;
        long z = 0, mn = 0, mx = 0;
        foreach (var c in codes) { z += perCode[3 * c]; mn += perCode[3 * c + 1]; mx += perCode[3 * c + 2]; }
        var entries = dict.Entries;
        for (int r = 0; r + 1 < rowOffsets.Length; r++)
        {
            int a = rowOffsets[r], b = rowOffsets[r + 1];
            if (b <= a) continue;
            long before = 0;
            for (int k = a; k < b - 1; k++) before += 2 * (entries[2 * codes[k]] & 15);
            int last = codes[b - 1], n = 2 * dict.PairCount(last);
            for (long i = cols - before; i < n; i++)
                switch (dict.Trit(last, (int)i)) { case 0: z--; break; case 1: mn--; break; default: mx--; break; }
        }
        return new(z, mn, mx);
    }
}
