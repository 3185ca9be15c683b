using Qmoe.IO;

namespace Qmoe.Runtime;

/// <summary>
/// Token data of one split of an eval/calibration file: <c>S.input_ids</c> [N, Lin] and <c>S.labels</c> [N, Llab]
/// (span corruption) or <c>S.raw_blocks</c> [N, L] (causal LM). Ids are checked against the vocabulary.
/// </summary>
public sealed class EvalSet
{
    public string Split { get; }
    public int[][]? InputIds { get; }
    public int[][]? Labels { get; }
    public int[][]? RawBlocks { get; }

    private EvalSet(string split, int[][]? input, int[][]? labels, int[][]? raw)
    { Split = split; InputIds = input; Labels = labels; RawBlocks = raw; }

    /// <summary>A causal split of raw blocks made in memory (e.g. from text).</summary>
    public static EvalSet FromRawBlocks(string split, int[][] blocks) => new(split, null, null, blocks);

    /// <summary>A span-corruption split made in memory (e.g. from text).</summary>
    public static EvalSet FromSpanCorruption(string split, int[][] inputIds, int[][] labels) => new(split, inputIds, labels, null);

    /// <summary>
    /// Loads split <paramref name="split"/>: for a decoder-only model (<paramref name="causal"/>) only its raw
    /// blocks, otherwise its span-corrupted input_ids/labels (the other kind may use ids outside the model's
    /// vocabulary, e.g. sentinels, and is not read).
    /// </summary>
    public static EvalSet Load(string path, string split, int vocabSize, int? limit = null, bool causal = false)
    {
        using var f = SafeTensorsFile.Open(path);
        int[][]? Read(string name)
        {
            string full = $"{split}.{name}";
            if (!f.Contains(full)) return null;
            var t = f.Info(full);
            if (t.Shape.Length != 2) throw new QmoeException($"{path}: tensor '{full}' has shape {t.ShapeText}, expected 2 dimensions");
            if (t.DType is not (DType.I32 or DType.I64)) throw new QmoeException($"{path}: tensor '{full}' has dtype {t.DType}, expected I32 or I64");
            int n = (int)t.Shape[0], len = (int)t.Shape[1];
            if (limit is int l) n = Math.Min(n, l);
            var all = f.ReadInt32(full);
            var rows = new int[n][];
            for (int i = 0; i < n; i++)
            {
                rows[i] = all[(i * len)..((i + 1) * len)];
                foreach (var id in rows[i])
                    if ((uint)id >= (uint)vocabSize)
                        throw new QmoeException($"{path}: tensor '{full}' row {i} holds token id {id}, outside the model's vocabulary [0, {vocabSize})");
            }
            return rows;
        }
        if (causal)
            return new EvalSet(split, null, null, Read("raw_blocks")
                ?? throw new QmoeException($"{path}: split '{split}' has no tensor '{split}.raw_blocks' (causal LM data)"));
        var set = new EvalSet(split, Read("input_ids"), Read("labels"), null);
        if (set.InputIds == null)
            throw new QmoeException($"{path}: split '{split}' has no tensor '{split}.input_ids' (span-corruption data)");
        if (set.InputIds != null && (set.Labels == null || set.Labels.Length != set.InputIds.Length))
            throw new QmoeException($"{path}: split '{split}' has input_ids but no matching '{split}.labels'");
        return set;
    }
}
