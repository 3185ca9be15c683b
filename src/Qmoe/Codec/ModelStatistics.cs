using Qmoe.IO;

namespace Qmoe.Codec;

/// <summary>Size and content statistics of one expert group (every stored byte of the group counted).</summary>
public sealed record GroupStatistics(string Name, int Experts, int Rows, int Cols, long Codes, long CodeBytes,
    long OffsetBytes, long ScaleBytes, TritStatistics Trits, long NBitBytes = 0, IReadOnlyList<byte>? ExpertTypes = null)
{
    public long Parameters => (long)Experts * Rows * Cols;
    /// <summary>Every stored byte of the group: dict16 codes, offsets, scales, and the n-bit tensors (issue 16).</summary>
    public long Bytes => CodeBytes + OffsetBytes + ScaleBytes + NBitBytes;
    public double BitsPerParam => 8.0 * Bytes / Parameters;
    public double CodeBitsPerParam => 16.0 * Codes / Parameters;
}

/// <summary>
/// The statistics of <c>inspect</c> (SPEC §1). Expert bits count the codes, expert and row offsets, scales and the
/// dictionary; total bits count every byte of the weight files (headers included) over all parameters; code bits
/// count codewords only; entropy is the empirical order-0 entropy of all expert trits (the bound a perfect entropy
/// coder of independent trits would reach).
/// </summary>
public sealed record ModelStatistics(IReadOnlyList<GroupStatistics> Groups, long ExpertParameters, long ExpertBytes,
    long DictionaryBytes, long PlainParameters, long PlainBytes, long FileBytes, TritStatistics Trits)
{
    public double ExpertBitsPerParam => 8.0 * ExpertBytes / ExpertParameters;
    public double CodeBitsPerParam => 16.0 * Groups.Sum(g => g.Codes) / ExpertParameters;
    public double TotalBitsPerParam => 8.0 * FileBytes / (ExpertParameters + PlainParameters);
    public double EntropyBitsPerParam => Trits.EntropyBits;
    public double ZeroFraction => Trits.ZeroFraction;

    public static ModelStatistics Compute(CompressedModel model)
    {
        var groups = new List<GroupStatistics>();
        foreach (var g in model.Groups)
        {
            var trits = default(TritStatistics);
            long codes = 0;
            for (int e = 0; e < g.Experts; e++)
            {
                var m = model.Expert(g, e);
                codes += m.Codes.Length;
                if (g.NBit?.IsCoded(e) != true) trits += TritStatistics.OfCodes(m.Codes, m.RowOffsets, g.Cols, model.Dictionary); // coded 2-bit: not trits
            }
            long scaleBytes = g.ScaleBytes;
            long nbitBytes = g.NBit?.Bytes ?? 0;
            long offsetBytes = g.Bytes - g.CodeBytes - scaleBytes - nbitBytes;
            groups.Add(new GroupStatistics(g.Name, g.Experts, g.Rows, g.Cols, codes, g.CodeBytes, offsetBytes,
                scaleBytes, trits, nbitBytes, g.NBit?.Types.ToArray()));
        }
        long dictBytes = model.Store.Info(DictionaryRecord.TensorName(model.Store, model.FormatVersion)).ByteLength
            + (model.FourLevelDictionary != null ? model.Store.Info(CompressedFormat.FourLevelDictionaryTensor).ByteLength : 0);
        var plain = model.PlainTensors().ToList();
        return new ModelStatistics(groups,
            ExpertParameters: groups.Sum(g => g.Parameters),
            ExpertBytes: groups.Sum(g => g.Bytes) + dictBytes,
            DictionaryBytes: dictBytes,
            PlainParameters: plain.Sum(t => t.ElementCount),
            PlainBytes: plain.Sum(t => t.ByteLength),
            FileBytes: model.Store.Files.Sum(f => f.FileLength),
            Trits: groups.Aggregate(default(TritStatistics), (a, g) => a + g.Trits));
    }
}
