namespace Qmoe.Codec;

/// <summary>
/// Names and versions of the compressed model directory (SPEC §5, docs/FORMAT.md). For an expert group
/// <c>G = &lt;layer prefix&gt;.experts.&lt;kind&gt;</c> the file holds <c>G.codes</c> U16 [total codes],
/// <c>G.expert_offsets</c> I64 [E + 1], the row index (v1: <c>G.row_offsets</c> I32 [E, rows + 1] relative to the
/// expert; v2: none — rows end where their codes cover the width — or, optionally, <c>G.row_counts</c> U8/U16/I32
/// [E, rows], codes per row) and the scales (v1: <c>G.scales</c> BF16 [E, rows, 2]; v2: <c>G.scale_table</c> U16 [K]
/// and <c>G.scale_fields</c> U8, see <see cref="ScaleCoding"/>);
/// metadata <c>qmoe.shape.G</c> = "E,rows,cols"; one dictionary (v1: <c>qmoe.dictionary</c> U32 [65536, 2];
/// v2: <c>qmoe.dictionary_trie</c> U8 [n], see <see cref="DictionaryTrieMask"/>, or, when the dictionary is built from
/// pair costs and that is smaller, <c>qmoe.dictionary_costs</c> I64 [10], see <see cref="DictionaryRecord"/>).
/// </summary>
public static class CompressedFormat
{
    public const int Version1 = 1;
    /// <summary>v2: no row index (boundaries implied by the codes; optional per-row counts) instead of I32 offsets,
    /// scales as exponent-table indices + mantissas (about 18 instead of 32 bits per row), and the dictionary as a
    /// trie bit stream (55-61 KB) instead of entry words (524,288 bytes).</summary>
    public const int Version2 = 2;
    public const int LatestVersion = Version2;

    public const string QuantMethod = "qmoe";
    public const string Codebook = "dict16";
    public const string WeightsFile = "model.safetensors";
    /// <summary>Sharded output: Hugging Face's index (<c>weight_map</c>: tensor → shard file).</summary>
    public const string IndexFile = "model.safetensors.index.json";
    public const string ConfigFile = "config.json";
    /// <summary>v1: the dictionary as U32 [65536, 2] entry words.</summary>
    public const string DictionaryTensor = "qmoe.dictionary";
    /// <summary>v2: the dictionary as its breadth-first trie mask (see <see cref="DictionaryTrieMask"/>).</summary>
    public const string DictionaryTrieTensor = "qmoe.dictionary_trie";
    /// <summary>v2, instead of the trie when it is smaller: the nine integer pair costs the dictionary is regenerated
    /// from, plus a checksum of the result (see <see cref="DictionaryRecord"/>).</summary>
    public const string DictionaryCostsTensor = "qmoe.dictionary_costs";
    /// <summary>v2 with coded 2-bit experts: the four-level dictionary's sixteen pair costs and checksum (see <see cref="DictionaryRecord"/>).</summary>
    public const string FourLevelDictionaryTensor = "qmoe.dictionary4_costs";
    public const string FormatVersionKey = "qmoe.format_version";
    public const string ShapeKeyPrefix = "qmoe.shape.";
    /// <summary>Metadata of a shard holding experts [first, end) of a group split over shards: <c>qmoe.range.G</c> = "first,end".</summary>
    public const string RangeKeyPrefix = "qmoe.range.";

    public static string Group(string prefix, string kind) => $"{prefix}.experts.{kind}";
    /// <summary>Name prefix of experts [first, end) of a group split over shards (its tensors are <c>Range(G, a, b).codes</c>, ...).</summary>
    public static string Range(string group, int first, int end) => $"{group}.range_{first}_{end}";
    /// <summary>Hugging Face shard name, k and n from 1: <c>model-0000k-of-0000n.safetensors</c>.</summary>
    public static string ShardFile(int k, int n) => $"model-{k:D5}-of-{n:D5}.safetensors";
    public static string Codes(string group) => group + ".codes";
    public static string ExpertOffsets(string group) => group + ".expert_offsets";
    public static string RowOffsets(string group) => group + ".row_offsets";
    public static string RowCounts(string group) => group + ".row_counts";
    public static string Scales(string group) => group + ".scales";
    public static string ScaleTable(string group) => group + ".scale_table";
    public static string ScaleFields(string group) => group + ".scale_fields";

    public static bool IsKnownVersion(int v) => v is Version1 or Version2;

}
