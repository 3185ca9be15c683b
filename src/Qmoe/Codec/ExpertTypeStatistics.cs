namespace Qmoe.Codec;

/// <summary>
/// Per stored type (ternary, 2, 3, 4 bits, coded 2-bit; issue 16) the number of expert matrices, their parameters and
/// their bits per parameter: ternary = the experts' dict16 codes (offsets, scales and dictionary are shared by the group
/// and counted in the model's total only); n-bit = packed codes + f32 scale and u8 zero per row; coded 2-bit = its dict16
/// codes + f32 scale and u8 zero per row.
/// </summary>
/// <param name="Type">"ternary", "2", "3", "4" or "2 coded".</param>
/// <param name="Matrices">expert matrices of the type.</param>
/// <param name="Parameters">their weights.</param>
/// <param name="Bytes">their stored bytes, counted as above.</param>
/// <param name="SymbolCounts">n-bit types: how often each zero-relative symbol (code − the row's zero point) mod 2^bits
/// occurs, [2^bits]; null for ternary.</param>
/// <param name="CodeBytes">the codes alone (bit-packed rows, or dict16 codes), without the row grids.</param>
public sealed record ExpertTypeStatistics(string Type, int Matrices, long Parameters, long Bytes, long[]? SymbolCounts = null, long CodeBytes = 0)
{
    public double BitsPerParam => Parameters == 0 ? 0 : 8.0 * Bytes / Parameters;
    public double CodeBitsPerParam => Parameters == 0 ? 0 : 8.0 * CodeBytes / Parameters;

    /// <summary>
    /// n-bit types: the empirical order-0 entropy of their codes given each row's zero point, in bits per weight: what an
    /// ideal entropy code of the packed codes could reach (plain packing spends the full width); NaN for ternary, whose
    /// bound is the trit entropy of <see cref="ModelStatistics"/>. Counting symbols relative to the zero point matters:
    /// GPTQ's grid puts most weights at the level nearest 0, which is code = zero, and the zero point varies by row.
    /// </summary>
    public double EntropyBits
    {
        get
        {
            if (SymbolCounts == null) return double.NaN;
            double n = SymbolCounts.Sum(), h = 0;
            foreach (long c in SymbolCounts)
                if (c > 0) h -= c / n * Math.Log2(c / n);
            return h;
        }
    }

    public static IReadOnlyList<ExpertTypeStatistics> Compute(CompressedModel model)
    {
        var acc = new SortedDictionary<int, (int Matrices, long Params, long Bytes, long[]? Symbols, long CodeBytes)>();
        foreach (var g in model.Groups)
            for (int e = 0; e < g.Experts; e++)
            {
                int type = g.NBit?.Types[e] ?? NBitGroup.TernaryType;
                bool ternary = type == NBitGroup.TernaryType, coded = type == NBitGroup.CodedTwoBitType;
                long codeBytes = ternary || coded ? 2L * model.Expert(g, e).Codes.Length : g.Rows * PackedNBitMatrix.RowBytesOf(type, g.Cols);
                long bytes = codeBytes + (ternary ? 0 : g.Rows * (sizeof(float) + 1L));
                var (m, p, b, symbols, cb) = acc.GetValueOrDefault(type);
                if (coded) CountCodedSymbols(model, g, e, symbols ??= new long[4]);
                else if (!ternary) CountSymbols(g.NBit!.Matrix(model.Store, e), symbols ??= new long[1 << type]);
                acc[type] = (m + 1, p + (long)g.Rows * g.Cols, b + bytes, symbols, cb + codeBytes);
            }
        return acc.Select(kv => new ExpertTypeStatistics(kv.Key switch { NBitGroup.TernaryType => "ternary", NBitGroup.CodedTwoBitType => "2 coded", _ => kv.Key.ToString() },
            kv.Value.Matrices, kv.Value.Params, kv.Value.Bytes, kv.Value.Symbols, kv.Value.CodeBytes)).ToList();
    }

    // A coded 2-bit expert's symbols (stored as code − zero mod 4), decoded row by row through the four-level dictionary.
    private static void CountCodedSymbols(CompressedModel model, ExpertGroup g, int e, long[] counts)
    {
        var m = model.Expert(g, e);
        var row = new byte[g.Cols];
        for (int r = 0; r < g.Rows; r++)
        {
            TernaryDecoder.DecodeRow(m.Codes[m.RowOffsets[r]..m.RowOffsets[r + 1]], model.FourLevelDictionary!, row);
            foreach (byte s in row) counts[s]++;
        }
    }

    // counts[(code − zero_r) mod 2^bits] over every weight of m.
    private static void CountSymbols(in Kernels.NBitMatrix m, long[] counts)
    {
        foreach (byte s in PackedNBitMatrix.ZeroRelativeSymbols(m.Packed, m.Zeros, m.Bits, m.Cols)) counts[s]++;
    }
}
