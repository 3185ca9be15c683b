using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Qmoe.Codec;
using Qmoe.IO;

namespace Qmoe.Tests.Codec;

/// <summary>
/// Test data from real weights without GPTQ (the kernels' threshold ternarizer), and helpers to write a whole
/// checkpoint's experts that way.
/// </summary>
public static partial class ThresholdTernary
{
    public static TernaryMatrix Ternarize(float[] w, int rows, int cols, double zeroQuantile = 0.85)
    {
        var (trits, scales) = Qmoe.Tests.Kernels.ThresholdTernary.Ternarize(w, rows, cols, zeroQuantile);
        return new TernaryMatrix(rows, cols, trits, scales);
    }

    [GeneratedRegex(@"^(.*)\.experts\.expert_(\d+)\.(\w+)\.weight$")]
    private static partial Regex ExpertName();

    /// <summary>Expert groups of a Switch checkpoint: (prefix, kind) → expert weight names in expert order.</summary>
    public static SortedDictionary<(string Prefix, string Kind), SortedDictionary<int, string>> ExpertGroups(TensorStore store)
    {
        var groups = new SortedDictionary<(string, string), SortedDictionary<int, string>>();
        foreach (var name in store.Names)
            if (ExpertName().Match(name) is { Success: true } m)
            {
                var key = (m.Groups[1].Value, m.Groups[3].Value);
                if (!groups.TryGetValue(key, out var experts)) groups[key] = experts = new();
                experts[int.Parse(m.Groups[2].Value)] = name;
            }
        return groups;
    }

    /// <summary>
    /// Writes a compressed directory from a Switch checkpoint with threshold-ternarized experts; returns the
    /// ternary matrices written, by (prefix, kind, expert).
    /// </summary>
    public static Dictionary<(string, string, int), TernaryMatrix> Compress(string modelDir, string outDir,
        int formatVersion = CompressedFormat.LatestVersion, DictionaryChoice dictionary = DictionaryChoice.Default, bool rowCounts = false,
        DictionaryStorage storage = DictionaryStorage.Auto, long shardBytes = 0)
    {
        using var store = TensorStore.Open(modelDir);
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(modelDir, "config.json")))!;
        var groups = ExpertGroups(store);
        var expertNames = groups.Values.SelectMany(g => g.Values).ToHashSet();
        var written = new Dictionary<(string, string, int), TernaryMatrix>();
        using var w = new CompressedModelWriter(outDir, config, new JsonObject { ["method"] = "threshold" }, dictionary, formatVersion,
            storeRowCounts: rowCounts, dictionaryStorage: storage, shardBytes: shardBytes);
        foreach (var name in store.Names.Where(n => !expertNames.Contains(n)).OrderBy(n => n, StringComparer.Ordinal))
        {
            var f = store.FileOf(name);
            var t = f.Info(name);
            w.AddTensor(new PlainTensor(name, t.DType, t.Shape, () => f.Bytes(t)));
        }
        foreach (var ((prefix, kind), experts) in groups)
        {
            var list = new List<TernaryMatrix>();
            foreach (var (e, name) in experts)
            {
                var t = store.Info(name);
                var m = Ternarize(store.ReadFloat32(name), (int)t.Shape[0], (int)t.Shape[1]);
                list.Add(m);
                written[(prefix, kind, e)] = m;
            }
            w.AddExpertGroup(prefix, kind, list);
        }
        w.Complete();
        return written;
    }
}
