namespace Qmoe.Codec;

/// <summary>
/// Chooses a dictionary for the model being written: builds candidates from the sample's statistics and keeps the
/// one that encodes the sample into the fewest codes (greedy parsing with a 14-pair cap does not reward the most
/// probable set exactly, so the choice is measured, not assumed).
/// </summary>
internal static class DictionaryFitter
{
    /// <summary>The trits a fit samples: enough for stable pair statistics, a few MiB whatever the model's size.</summary>
    public const long SampleTrits = 1 << 22;

    /// <summary>
    /// The rows to fit on: every k-th row of <paramref name="matrices"/> [rows, cols] taken in order, k = ⌈trits /
    /// <paramref name="sampleTrits"/>⌉, so about <paramref name="sampleTrits"/> trits spread evenly (every row of a
    /// model that small). Yields (matrix index, row).
    /// </summary>
    public static IEnumerable<(int Matrix, int Row)> SampleRows(IReadOnlyList<(int Rows, int Cols)> matrices, long sampleTrits = SampleTrits)
    {
        long total = matrices.Sum(m => (long)m.Rows * m.Cols);
        long k = Math.Max(1, (total + sampleTrits - 1) / sampleTrits); // total / k ≤ sampleTrits
        long next = k / 2, seen = 0; // the global index of the next sampled row, and of the current matrix's row 0
        for (int m = 0; m < matrices.Count; m++)
        {
            for (; next < seen + matrices[m].Rows; next += k) yield return (m, (int)(next - seen));
            seen += matrices[m].Rows;
        }
    }

    /// <summary>The four-level dictionary of coded 2-bit experts (docs/FORMAT.md): built from the pair statistics of
    /// <paramref name="sampleRows"/>, rows of symbols 0..3 (at least one row).</summary>
    public static CodeDictionary FitFourLevel(IEnumerable<byte[]> sampleRows)
    {
        var counts = new long[16];
        foreach (var row in sampleRows)
            for (int j = 0; j + 1 < row.Length; j += 2) counts[row[j] + 4 * row[j + 1]]++;
        return CodeDictionary.Build(PairModel.Fit(counts), "fitted four-level pair statistics");
    }

    public static CodeDictionary Fit(IEnumerable<byte[]> sampleRows)
    {
        var rows = sampleRows.ToList();
        if (rows.Count == 0) return CodeDictionary.Default;
        var pairs = new long[PairModel.Symbols];
        long zeros = 0, trits = 0;
        foreach (var row in rows)
        {
            zeros += row.AsSpan().Count((byte)0);
            trits += row.Length;
            for (int i = 0; i + 1 < row.Length; i += 2) pairs[row[i] + 3 * row[i + 1]]++;
        }
        double p0 = Math.Clamp((double)zeros / trits, 0.01, 0.99);
        var candidates = new List<Func<CodeDictionary>>
        {
            () => CodeDictionary.Default,
            () => CodeDictionary.Build(PairModel.Fit(pairs), "fitted pair statistics"),
        };
        // Measured on real and i.i.d. ternary weights: dictionaries built for 2-6 points fewer zeros than measured
        // parse best (greedy longest match does not reward the most probable set exactly), so try a small grid.
        foreach (double delta in new[] { 0.0, -0.02, -0.04, -0.06 })
        {
            double p = Math.Round(Math.Clamp(p0 + delta, 0.01, 0.99), 4);
            candidates.Add(() => CodeDictionary.Build(PairModel.Iid(p), $"iid p0={p}"));
        }
        var codes = new long[candidates.Count];
        var dicts = new CodeDictionary[candidates.Count];
        Parallel.For(0, candidates.Count, i =>
        {
            dicts[i] = candidates[i]();
            var buffer = new ushort[rows.Max(r => TernaryEncoder.MaxCodesPerRow(r.Length))];
            foreach (var row in rows) codes[i] += TernaryEncoder.EncodeRow(row, dicts[i], buffer);
        });
        int best = 0; // ties keep the earlier candidate (the default first)
        for (int i = 1; i < codes.Length; i++) if (codes[i] < codes[best]) best = i;
        return dicts[best];
    }
}
