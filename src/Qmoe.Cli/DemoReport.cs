using System.Text.Json.Nodes;
using Qmoe.Codec;

namespace Qmoe.Cli;

/// <summary>Pieces of demo-report.json shared by the demo and its slice, and the check that every number in it is finite.</summary>
internal static class DemoReport
{
    /// <summary>Expert bits per parameter by what they store (every byte of the expert tensors and the dictionary).</summary>
    public static JsonObject BitsBreakdown(ModelStatistics s)
    {
        double Bits(long bytes) => 8.0 * bytes / s.ExpertParameters;
        return new JsonObject
        {
            ["codes"] = Bits(s.Groups.Sum(g => g.CodeBytes)),
            ["scales"] = Bits(s.Groups.Sum(g => g.ScaleBytes)),
            ["row_index"] = Bits(s.Groups.Sum(g => g.OffsetBytes)),
            ["dictionary"] = Bits(s.DictionaryBytes),
            ["total"] = s.ExpertBitsPerParam,
        };
    }

    public static JsonArray Array(IEnumerable<double> values) => new([.. values.Select(v => (JsonNode)JsonValue.Create(v))]);

    /// <summary>The JSON path of every number that is not finite (an empty list for a good report).</summary>
    public static List<string> NonFinite(JsonNode? node, string path = "$")
    {
        var bad = new List<string>();
        switch (node)
        {
            case JsonObject o:
                foreach (var (k, v) in o) bad.AddRange(NonFinite(v, $"{path}.{k}"));
                break;
            case JsonArray a:
                for (int i = 0; i < a.Count; i++) bad.AddRange(NonFinite(a[i], $"{path}[{i}]"));
                break;
            case JsonValue v when v.TryGetValue(out double d):
                if (!double.IsFinite(d)) bad.Add(path);
                break;
            case null:
                bad.Add(path + " (null)");
                break;
        }
        return bad;
    }
}
