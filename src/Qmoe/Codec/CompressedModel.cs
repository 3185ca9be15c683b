using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using Qmoe.IO;

namespace Qmoe.Codec;

/// <summary>One expert's matrix as stored: zero-copy views of its codes, row offsets and bf16 (min, max) scales.</summary>
public readonly ref struct ExpertMatrix
{
    public int Rows { get; init; }
    public int Cols { get; init; }
    /// <summary>This expert's codes; row r is <c>Codes[RowOffsets[r] .. RowOffsets[r + 1]]</c>.</summary>
    public ReadOnlySpan<ushort> Codes { get; init; }
    /// <summary>[Rows + 1], relative to <see cref="Codes"/>.</summary>
    public ReadOnlySpan<int> RowOffsets { get; init; }
    /// <summary>bf16 bits [Rows, 2] = (min, max) per row (v2: rebuilt in memory at open).</summary>
    public ReadOnlySpan<ushort> Scales { get; init; }

    /// <summary>Copies into an <see cref="EncodedMatrix"/> (for the encoder/decoder API).</summary>
    public EncodedMatrix ToEncoded() => new(Rows, Cols, Codes.ToArray(), RowOffsets.ToArray());
}

/// <summary>One stacked expert group <c>&lt;prefix&gt;.experts.&lt;kind&gt;</c> of a compressed model.</summary>
public sealed class ExpertGroup
{
    public required string Name { get; init; }
    public required string Prefix { get; init; }
    public required string Kind { get; init; }
    public required int Experts { get; init; }
    public required int Rows { get; init; }
    public required int Cols { get; init; }
    public long Parameters => (long)Experts * Rows * Cols;
    /// <summary>Stored tensors of this group (codes, expert offsets, row index, scales).</summary>
    public required IReadOnlyList<TensorInfo> Tensors { get; init; }
    public required TensorInfo CodesTensor { get; init; }
    public required TensorInfo ExpertOffsetsTensor { get; init; }
    /// <summary>The tensor the scales are read from (v1: <c>G.scales</c>; v2: <c>G.scale_fields</c>).</summary>
    public required TensorInfo ScalesTensor { get; init; }
    /// <summary>v2: the scales' sign+exponent table (<c>G.scale_table</c>); v1: null.</summary>
    public TensorInfo? ScaleTableTensor { get; init; }
    /// <summary>The group's per-expert types and n-bit experts (issue 16); null when every expert is ternary.</summary>
    public NBitGroup? NBit { get; init; }
    internal int[]? RowOffsets; // v2: rebuilt from codes or counts; v1: null (read in place)
    internal ushort[]? Scales;  // v2: rebuilt from table and fields; v1: null (read in place)
    internal TensorInfo? RowOffsetsTensor;
}

/// <summary>
/// A compressed model directory opened for reading (SPEC §5, docs/FORMAT.md). Opening checks the structure
/// cheaply — format version, dtypes and shapes against the shape metadata and config.json, expert and row offsets
/// monotone and in range, every dictionary entry well formed — so later views need no checks. <see cref="CompressedModelVerifier"/>
/// adds the full hash and decodability check.
/// </summary>
public sealed class CompressedModel : IDisposable
{
    private readonly Dictionary<string, ExpertGroup> _groups;

    public string Directory { get; }
    public JsonObject Config { get; }
    public int FormatVersion { get; }
    public TensorStore Store { get; }
    public CodeDictionary Dictionary { get; }
    public IReadOnlyList<ExpertGroup> Groups { get; }

    private CompressedModel(string dir, JsonObject config, int version, TensorStore store, CodeDictionary dict, List<ExpertGroup> groups)
    {
        Directory = dir; Config = config; FormatVersion = version; Store = store; Dictionary = dict;
        Groups = groups;
        _groups = groups.ToDictionary(g => g.Name, StringComparer.Ordinal);
    }

    /// <summary>True when <paramref name="dir"/>'s config.json declares a qmoe quantization_config.</summary>
    public static bool IsCompressed(string dir)
    {
        try
        {
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, CompressedFormat.ConfigFile))) as JsonObject;
            return cfg?["quantization_config"]?["quant_method"]?.GetValue<string>() == CompressedFormat.QuantMethod;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or FormatException) { return false; }
    }

    public static CompressedModel Open(string dir)
    {
        var (config, version) = ReadConfig(dir);
        var store = TensorStore.Open(dir);
        try
        {
            var dict = DictionaryRecord.Read(store, version, config["quantization_config"]?["dictionary"] is JsonValue v && v.TryGetValue(out string? src) ? src : null);
            var groups = ReadGroups(store, config, version, dict);
            return new CompressedModel(dir, config, version, store, dict, groups);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private static (JsonObject, int) ReadConfig(string dir)
    {
        string path = Path.Combine(dir, CompressedFormat.ConfigFile);
        if (!File.Exists(path)) throw new QmoeException($"{path}: file not found");
        byte[] bytes = File.ReadAllBytes(path);
        // JsonNode checks string contents lazily: refuse bad UTF-8 up front so later reads cannot throw.
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new QmoeException($"{path}: not valid UTF-8");
        JsonObject config;
        try { config = JsonNode.Parse(bytes) as JsonObject ?? throw new QmoeException($"{path}: not a JSON object"); }
        catch (JsonException e) { throw new QmoeException($"{path}: not valid JSON ({e.Message})"); }
        if (config["quantization_config"] is not JsonObject q) throw new QmoeException($"{path}: no quantization_config (not a compressed model)");
        if (!TryString(q["quant_method"], out var method) || method != CompressedFormat.QuantMethod)
            throw new QmoeException($"{path}: quantization_config.quant_method is not \"{CompressedFormat.QuantMethod}\"");
        if (!TryInt(q["format_version"], out int version) || !CompressedFormat.IsKnownVersion(version))
            throw new QmoeException($"{path}: quantization_config.format_version {q["format_version"]?.ToJsonString()} is not a known version (1, 2)");
        if (q["codebook"] is { } cb && (!TryString(cb, out var codebook) || codebook != CompressedFormat.Codebook))
            throw new QmoeException($"{path}: quantization_config.codebook {cb.ToJsonString()} is not \"{CompressedFormat.Codebook}\"");
        return (config, version);
    }

    private static bool TryString(JsonNode? n, out string s)
    {
        s = "";
        if (n is JsonValue v && v.TryGetValue(out string? x)) { s = x; return true; }
        return false;
    }

    private static bool TryInt(JsonNode? n, out int i)
    {
        i = 0;
        return n is JsonValue v && v.TryGetValue(out i);
    }

    private static List<ExpertGroup> ReadGroups(TensorStore store, JsonObject config, int version, CodeDictionary dict)
    {
        var groups = new List<ExpertGroup>();
        var shapes = new Dictionary<string, (SafeTensorsFile File, string Value)>(StringComparer.Ordinal);
        foreach (var f in store.Files)
        {
            if (f.Metadata.TryGetValue(CompressedFormat.FormatVersionKey, out var v) && v != version.ToString())
                throw new QmoeException($"{f.Path}: metadata format_version {v} differs from config.json's {version}");
            foreach (var (k, value) in f.Metadata)
                if (k.StartsWith(CompressedFormat.ShapeKeyPrefix, StringComparison.Ordinal))
                    shapes[k[CompressedFormat.ShapeKeyPrefix.Length..]] = (f, value);
        }
        // Every stored codes tensor must belong to a declared group, so nothing escapes validation.
        foreach (var name in store.Names)
            if (name.EndsWith(".codes", StringComparison.Ordinal) && !shapes.ContainsKey(name[..^".codes".Length]))
                throw new QmoeException($"{store.FileOf(name).Path}: tensor '{name}' has no {CompressedFormat.ShapeKeyPrefix} metadata");
        foreach (var (name, (file, value)) in shapes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            groups.Add(ReadGroup(store, config, version, dict, name, file, value));
        return groups;
    }

    private static ExpertGroup ReadGroup(TensorStore store, JsonObject config, int version, CodeDictionary dict, string name,
        SafeTensorsFile meta, string shapeText)
    {
        int marker = name.LastIndexOf(".experts.", StringComparison.Ordinal);
        var parts = shapeText.Split(',');
        if (marker <= 0 || parts.Length != 3
            || !int.TryParse(parts[0], out int experts) || !int.TryParse(parts[1], out int rows) || !int.TryParse(parts[2], out int cols)
            || experts <= 0 || rows <= 0 || cols <= 0)
            throw new QmoeException($"{meta.Path}: metadata {CompressedFormat.ShapeKeyPrefix}{name} = \"{shapeText}\" is not \"E,rows,cols\" of a <prefix>.experts.<kind> group");
        CheckAgainstConfig(meta.Path, config, name, experts, rows, cols);

        TensorInfo Tensor(string tensor, DType dtype, params long[] shape)
        {
            if (!store.Contains(tensor)) throw new QmoeException($"{store.Directory}: tensor '{tensor}' missing");
            var t = store.Info(tensor);
            if (t.DType != dtype || (shape.Length > 0 && !t.Shape.AsSpan().SequenceEqual(shape)))
                throw new QmoeException($"{store.FileOf(tensor).Path}: tensor '{tensor}' has {t.DType} {t.ShapeText}, expected {dtype} [{(shape.Length > 0 ? string.Join(", ", shape) : "n")}]");
            return t;
        }
        var codes = Tensor(CompressedFormat.Codes(name), DType.U16);
        if (codes.Shape.Length != 1) throw new QmoeException($"{store.FileOf(codes.Name).Path}: tensor '{codes.Name}' has shape {codes.ShapeText}, expected one dimension");
        if (codes.ByteLength > int.MaxValue) throw new QmoeException($"{store.FileOf(codes.Name).Path}: tensor '{codes.Name}' is larger than 2 GiB (shard the group)");
        var expertOffsetsT = Tensor(CompressedFormat.ExpertOffsets(name), DType.I64, experts + 1L);
        var eo = MemoryMarshal.Cast<byte, long>(store.FileOf(expertOffsetsT.Name).Bytes(expertOffsetsT));
        string eoWhere = $"{store.FileOf(expertOffsetsT.Name).Path}: tensor '{expertOffsetsT.Name}'";
        if (eo[0] != 0) throw new QmoeException($"{eoWhere}: first offset {eo[0]}, not 0");
        var nbit = NBitGroup.Read(store, name, experts, rows, cols);
        for (int e = 0; e < experts; e++)
        {
            long n = eo[e + 1] - eo[e];
            if (nbit != null && nbit.IsNBit(e))
            {
                if (n != 0) throw new QmoeException($"{eoWhere}: expert {e} is n-bit but has {n} dict16 codes");
                continue;
            }
            // A row needs at least one code and at most one per pair.
            if (n < rows || n > (long)rows * TernaryEncoder.MaxCodesPerRow(cols))
                throw new QmoeException($"{eoWhere}: expert {e} has {n} codes, impossible for {rows} rows of {cols}");
        }
        if (eo[experts] != codes.Shape[0]) throw new QmoeException($"{eoWhere}: offsets end at {eo[experts]}, codes has {codes.Shape[0]}");

        // Scales only now: E·rows is bounded by the code count, so the sizes below cannot overflow.
        TensorInfo scales;
        TensorInfo? scaleTable = null;
        ushort[]? scaleValues = null;
        if (version == CompressedFormat.Version1) scales = Tensor(CompressedFormat.Scales(name), DType.BF16, experts, rows, 2);
        else
        {
            scaleTable = Tensor(CompressedFormat.ScaleTable(name), DType.U16);
            scales = Tensor(CompressedFormat.ScaleFields(name), DType.U8);
            if (scaleTable.Shape.Length != 1 || scales.Shape.Length != 1)
                throw new QmoeException($"{store.FileOf(scales.Name).Path}: tensors '{scaleTable.Name}' and '{scales.Name}' must have one dimension");
            scaleValues = ScaleCoding.Decode(MemoryMarshal.Cast<byte, ushort>(store.FileOf(scaleTable.Name).Bytes(scaleTable)),
                store.FileOf(scales.Name).Bytes(scales), 2L * experts * rows, $"{store.FileOf(scales.Name).Path}: tensor '{scales.Name}'");
        }

        int[]? rowOffsets = null;
        TensorInfo? index;
        if (version == CompressedFormat.Version1)
        {
            index = Tensor(CompressedFormat.RowOffsets(name), DType.I32, experts, rows + 1L);
            RowIndex.CheckOffsets(MemoryMarshal.Cast<byte, int>(store.FileOf(index.Name).Bytes(index)), experts, rows, eo,
                $"{store.FileOf(index.Name).Path}: tensor '{index.Name}'");
        }
        else if (store.Contains(CompressedFormat.RowCounts(name)))
        {
            string countsName = CompressedFormat.RowCounts(name);
            index = store.Info(countsName);
            if (index.DType is not (DType.U8 or DType.U16 or DType.I32)) throw new QmoeException($"{store.FileOf(countsName).Path}: tensor '{countsName}' has dtype {index.DType}, expected U8, U16 or I32");
            index = Tensor(countsName, index.DType, experts, rows);
            rowOffsets = RowIndex.FromCounts(store.FileOf(index.Name).Bytes(index), index.DType, experts, rows, eo,
                $"{store.FileOf(index.Name).Path}: tensor '{index.Name}'");
        }
        else
        {
            index = null;
            rowOffsets = RowIndex.FromCodes(MemoryMarshal.Cast<byte, ushort>(store.FileOf(codes.Name).Bytes(codes)), eo, experts, rows, cols,
                dict, $"{store.FileOf(codes.Name).Path}: tensor '{codes.Name}'", nbit == null ? default : nbit.Types);
        }
        return new ExpertGroup
        {
            Name = name, Prefix = name[..marker], Kind = name[(marker + ".experts.".Length)..],
            Experts = experts, Rows = rows, Cols = cols,
            Tensors = new[] { codes, expertOffsetsT, index, scaleTable, scales }.OfType<TensorInfo>().Concat(nbit?.Tensors ?? []).ToArray(),
            NBit = nbit,
            CodesTensor = codes, ExpertOffsetsTensor = expertOffsetsT, ScalesTensor = scales, ScaleTableTensor = scaleTable,
            Scales = scaleValues,
            RowOffsets = rowOffsets, RowOffsetsTensor = rowOffsets == null ? index : null,
        };
    }

    /// <summary>
    /// Checks a group's shape against config.json where the config says: the expert count (<c>num_experts</c>,
    /// <c>num_local_experts</c> or <c>n_routed_experts</c>) and, when it names the model and expert widths
    /// (<c>d_model</c>/<c>d_ff</c>, or <c>hidden_size</c> with <c>moe_intermediate_size</c> (Qwen3-MoE, DeepSeek-V3) or
    /// else <c>intermediate_size</c>), that the matrix is one of [ff, model] or [model, ff].
    /// </summary>
    private static void CheckAgainstConfig(string path, JsonObject config, string name, int experts, int rows, int cols)
    {
        int? Int(string key) => config[key] is JsonValue v && v.TryGetValue(out int i) ? i : null;
        int? configured = Int("num_experts") ?? Int("num_local_experts") ?? Int("n_routed_experts");
        if (configured is int n && n != experts)
            throw new QmoeException($"{path}: group '{name}' has {experts} experts, config.json says {n}");
        int? model = Int("d_model") ?? Int("hidden_size"), ff = Int("d_ff") ?? Int("moe_intermediate_size") ?? Int("intermediate_size");
        if (model is int m && ff is int f && !((rows == f && cols == m) || (rows == m && cols == f)))
            throw new QmoeException($"{path}: group '{name}' has matrices [{rows}, {cols}], config.json implies [{f}, {m}] or [{m}, {f}]");
    }

    public bool Contains(string prefix, string kind) => _groups.ContainsKey(CompressedFormat.Group(prefix, kind));

    public ExpertGroup Group(string prefix, string kind) =>
        _groups.TryGetValue(CompressedFormat.Group(prefix, kind), out var g) ? g
            : throw new QmoeException($"{Directory}: no expert group '{CompressedFormat.Group(prefix, kind)}'");

    /// <summary>Zero-copy views of expert <paramref name="expert"/> of a group.</summary>
    public ExpertMatrix Expert(string prefix, string kind, int expert) => Expert(Group(prefix, kind), expert);

    public ExpertMatrix Expert(ExpertGroup g, int expert)
    {
        if ((uint)expert >= (uint)g.Experts) throw new QmoeException($"{Directory}: group '{g.Name}' has no expert {expert}");
        var eo = MemoryMarshal.Cast<byte, long>(Bytes(g.ExpertOffsetsTensor));
        var codes = MemoryMarshal.Cast<byte, ushort>(Bytes(g.CodesTensor));
        var rowOffsets = g.RowOffsets != null ? (ReadOnlySpan<int>)g.RowOffsets : MemoryMarshal.Cast<byte, int>(Bytes(g.RowOffsetsTensor!));
        var scales = g.Scales != null ? (ReadOnlySpan<ushort>)g.Scales : MemoryMarshal.Cast<byte, ushort>(Bytes(g.ScalesTensor));
        return new ExpertMatrix
        {
            Rows = g.Rows, Cols = g.Cols,
            Codes = codes[(int)eo[expert]..(int)eo[expert + 1]],
            RowOffsets = rowOffsets.Slice(expert * (g.Rows + 1), g.Rows + 1),
            Scales = scales.Slice(2 * expert * g.Rows, 2 * g.Rows),
        };
    }

    private ReadOnlySpan<byte> Bytes(TensorInfo t) => Store.FileOf(t.Name).Bytes(t);

    /// <summary>Names of tensors that are not part of an expert group or the dictionary.</summary>
    public IEnumerable<TensorInfo> PlainTensors()
    {
        var grouped = Groups.SelectMany(g => g.Tensors).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        grouped.Add(DictionaryRecord.TensorName(Store, FormatVersion));
        return Store.Names.Where(n => !grouped.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).Select(Store.Info);
    }

    public void Dispose() => Store.Dispose();
}
