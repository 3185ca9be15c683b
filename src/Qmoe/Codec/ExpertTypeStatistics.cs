namespace Qmoe.Codec;

/// <summary>
/// Per stored type (ternary, 2, 3, 4 bits; issue 16) the number of expert matrices, their parameters and their bits
/// per parameter: ternary = the experts' dict16 codes (offsets, scales and dictionary are shared by the group and
/// counted in the model's total only); n-bit = packed codes + f32 scale and u8 zero per row.
/// </summary>
public sealed record ExpertTypeStatistics(string Type, int Matrices, long Parameters, long Bytes)
{
    public double BitsPerParam => Parameters == 0 ? 0 : 8.0 * Bytes / Parameters;

    public static IReadOnlyList<ExpertTypeStatistics> Compute(CompressedModel model)
    {
        var acc = new SortedDictionary<int, (int Matrices, long Params, long Bytes)>();
        foreach (var g in model.Groups)
            for (int e = 0; e < g.Experts; e++)
            {
                int type = g.NBit?.Types[e] ?? NBitGroup.TernaryType;
                long bytes = type == NBitGroup.TernaryType
                    ? 2L * model.Expert(g, e).Codes.Length
                    : g.Rows * (PackedNBitMatrix.RowBytesOf(type, g.Cols) + sizeof(float) + 1);
                var (m, p, b) = acc.GetValueOrDefault(type);
                acc[type] = (m + 1, p + (long)g.Rows * g.Cols, b + bytes);
            }
        return acc.Select(kv => new ExpertTypeStatistics(kv.Key == NBitGroup.TernaryType ? "ternary" : kv.Key.ToString(),
            kv.Value.Matrices, kv.Value.Params, kv.Value.Bytes)).ToList();
    }
}
