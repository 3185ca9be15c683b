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
    /// <summary>bf16 bits [Rows, 2] = (min, max) per row (v2: rebuilt in memory at open); (0, 0) for an n-bit expert.</summary>
    public ReadOnlySpan<ushort> Scales { get; init; }
    /// <summary>A coded 2-bit expert's grid scale per row (empty for ternary): its codes index the four-level dictionary.</summary>
    public ReadOnlySpan<float> GridScales { get; init; }
    /// <summary>A coded 2-bit expert's grid zero point per row.</summary>
    public ReadOnlySpan<byte> GridZeros { get; init; }

    /// <summary>The kernels' view: ternary, or coded 2-bit when <see cref="GridScales"/> is set.</summary>
    public Kernels.CompressedMatrix ToKernel() => GridScales.IsEmpty
        ? new(Codes, RowOffsets, Scales, Rows, Cols)
        : new(Codes, RowOffsets, GridScales, GridZeros, Rows, Cols);

    /// <summary>Copies into an <see cref="EncodedMatrix"/> (for the encoder/decoder API).</summary>
    public EncodedMatrix ToEncoded() => new(Rows, Cols, Codes.ToArray(), RowOffsets.ToArray());
}

/// <summary>
/// Experts [First, First + Experts) of a group as stored under one name prefix: the whole group (<c>G.codes</c>, ...)
/// or, when the group is split over shards, one expert range (<c>G.range_a_b.codes</c>, ...).
/// </summary>
public sealed class ExpertGroupPart
{
    public required string Base { get; init; }
    public required int First { get; init; }
    public required int Experts { get; init; }
    public required TensorInfo CodesTensor { get; init; }
    public required TensorInfo ExpertOffsetsTensor { get; init; }
    /// <summary>The tensor the scales are read from (v1: <c>.scales</c>; v2: <c>.scale_fields</c>).</summary>
    public required TensorInfo ScalesTensor { get; init; }
    /// <summary>v2: the scales' sign+exponent table; v1: null.</summary>
    public TensorInfo? ScaleTableTensor { get; init; }
    /// <summary>The stored row index (v1 offsets or v2 counts), or null when rows are implied by the codes.</summary>
    public TensorInfo? IndexTensor { get; init; }
    public required SafeTensorsFile File { get; init; }
    /// <summary>Stored tensors of this part.</summary>
    public IEnumerable<TensorInfo> Tensors => new[] { CodesTensor, ExpertOffsetsTensor, IndexTensor, ScaleTableTensor, ScalesTensor }.OfType<TensorInfo>()
        .Concat(NBit?.Tensors ?? []);
    /// <summary>The part's per-expert types and n-bit experts (issue 16); null when every expert is ternary.</summary>
    public NBitGroup? NBit { get; init; }
    internal int[]? RowOffsets; // v2: rebuilt from codes or counts; v1: null (read in place)
    internal ushort[]? Scales;  // v2: rebuilt from table and fields; v1: null (read in place)
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
    /// <summary>The stored parts in expert order (one unless the group is split over shards).</summary>
    public required IReadOnlyList<ExpertGroupPart> Parts { get; init; }
    /// <summary>Stored tensors of this group (codes, expert offsets, row index, scales, n-bit tensors of every part).</summary>
    public IEnumerable<TensorInfo> Tensors => Parts.SelectMany(p => p.Tensors);
    public long CodeBytes => Parts.Sum(p => p.CodesTensor.ByteLength);
    public long ScaleBytes => Parts.Sum(p => p.ScalesTensor.ByteLength + (p.ScaleTableTensor?.ByteLength ?? 0));
    /// <summary>All stored bytes of the group.</summary>
    public long Bytes => Tensors.Sum(t => t.ByteLength);
    /// <summary>The group's per-expert types and n-bit experts (issue 16); null when every expert is ternary.
    /// Only whole (single-part) groups may hold n-bit experts.</summary>
    public NBitGroup? NBit => Parts.Count == 1 ? Parts[0].NBit : null;
    /// <summary>The part holding <paramref name="expert"/>.</summary>
    public ExpertGroupPart PartOf(int expert)
    {
        int lo = 0, hi = Parts.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (Parts[mid].First <= expert) lo = mid; else hi = mid - 1;
        }
        return Parts[lo];
    }
}

/// <summary>
/// A compressed model directory opened for reading (SPEC §5, docs/FORMAT.md). Opening checks the structure
/// cheaply — format version, dtypes and shapes against the shape metadata and config.json, expert and row offsets
/// monotone and in range, every dictionary entry well formed — so later views need no checks. <see cref="CompressedModelVerifier"/>
/// adds the full hash and decodability check.
/// </summary>
public sealed unsafe class CompressedModel : IDisposable
{
    private readonly Dictionary<string, ExpertGroup> _groups;

    public string Directory { get; }
    public JsonObject Config { get; }
    public int FormatVersion { get; }
    public TensorStore Store { get; }
    public CodeDictionary Dictionary { get; }

    /// <summary>The four-level dictionary of the coded 2-bit experts (docs/FORMAT.md), or null when the file has none.</summary>
    public CodeDictionary? FourLevelDictionary { get; private init; }
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
            var dict4 = version == CompressedFormat.Version1 ? null : DictionaryRecord.ReadFourLevel(store);
            var groups = ReadGroups(store, config, version, dict, dict4);
            return new CompressedModel(dir, config, version, store, dict, groups) { FourLevelDictionary = dict4 };
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

    private static List<ExpertGroup> ReadGroups(TensorStore store, JsonObject config, int version, CodeDictionary dict, CodeDictionary? dict4)
    {
        var groups = new List<ExpertGroup>();
        var shapes = new Dictionary<string, (SafeTensorsFile File, string Value)>(StringComparer.Ordinal);
        var ranges = new Dictionary<string, List<(SafeTensorsFile File, string Value)>>(StringComparer.Ordinal);
        foreach (var f in store.Files)
        {
            if (f.Metadata.TryGetValue(CompressedFormat.FormatVersionKey, out var v) && v != version.ToString())
                throw new QmoeException($"{f.Path}: metadata format_version {v} differs from config.json's {version}");
            foreach (var (k, value) in f.Metadata)
                if (k.StartsWith(CompressedFormat.ShapeKeyPrefix, StringComparison.Ordinal))
                {
                    string g = k[CompressedFormat.ShapeKeyPrefix.Length..];
                    if (shapes.TryGetValue(g, out var other) && other.Value != value)
                        throw new QmoeException($"{f.Path}: metadata {k} = \"{value}\" differs from {other.File.Path}'s \"{other.Value}\"");
                    shapes[g] = (f, value);
                }
                else if (k.StartsWith(CompressedFormat.RangeKeyPrefix, StringComparison.Ordinal))
                {
                    string g = k[CompressedFormat.RangeKeyPrefix.Length..];
                    if (!ranges.TryGetValue(g, out var list)) ranges[g] = list = new();
                    list.Add((f, value));
                }
        }
        foreach (var (g, list) in ranges)
            if (!shapes.ContainsKey(g)) throw new QmoeException($"{list[0].File.Path}: metadata {CompressedFormat.RangeKeyPrefix}{g} without {CompressedFormat.ShapeKeyPrefix}{g}");
        // Every stored codes tensor must belong to a declared group, so nothing escapes validation.
        foreach (var name in store.Names)
            if (name.EndsWith(".codes", StringComparison.Ordinal) && !shapes.ContainsKey(GroupOfCodes(name[..^".codes".Length])))
                throw new QmoeException($"{store.FileOf(name).Path}: tensor '{name}' has no {CompressedFormat.ShapeKeyPrefix} metadata");
        foreach (var (name, (file, value)) in shapes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            groups.Add(ReadGroup(store, config, version, dict, dict4, name, file, value, ranges.GetValueOrDefault(name)));
        return groups;
    }

    /// <summary>The group a part's name prefix belongs to: <c>G.range_a_b</c> → G; G itself otherwise.</summary>
    private static string GroupOfCodes(string partBase)
    {
        int dot = partBase.LastIndexOf(".range_", StringComparison.Ordinal);
        return dot > 0 ? partBase[..dot] : partBase;
    }

    private static ExpertGroup ReadGroup(TensorStore store, JsonObject config, int version, CodeDictionary dict, CodeDictionary? dict4, string name,
        SafeTensorsFile meta, string shapeText, List<(SafeTensorsFile File, string Value)>? rangeList)
    {
        int marker = name.LastIndexOf(".experts.", StringComparison.Ordinal);
        var parts = shapeText.Split(',');
        if (marker <= 0 || parts.Length != 3
            || !int.TryParse(parts[0], out int experts) || !int.TryParse(parts[1], out int rows) || !int.TryParse(parts[2], out int cols)
            || experts <= 0 || rows <= 0 || cols <= 0)
            throw new QmoeException($"{meta.Path}: metadata {CompressedFormat.ShapeKeyPrefix}{name} = \"{shapeText}\" is not \"E,rows,cols\" of a <prefix>.experts.<kind> group");
        CheckAgainstConfig(meta.Path, config, name, experts, rows, cols);

        // The parts must tile [0, E): one whole part, or ranges from the shards' metadata, in order, without gaps.
        var spans = new List<(int First, int End, string Base)>();
        if (rangeList == null) spans.Add((0, experts, name));
        else
        {
            foreach (var (file, value) in rangeList)
            {
                var r = value.Split(',');
                if (r.Length != 2 || !int.TryParse(r[0], out int a) || !int.TryParse(r[1], out int b) || a < 0 || b <= a || b > experts)
                    throw new QmoeException($"{file.Path}: metadata {CompressedFormat.RangeKeyPrefix}{name} = \"{value}\" is not \"first,end\" within 0..{experts}");
                spans.Add((a, b, CompressedFormat.Range(name, a, b)));
            }
            spans.Sort((x, y) => x.First.CompareTo(y.First));
            int next = 0;
            foreach (var (a, b, _) in spans)
            {
                if (a != next) throw new QmoeException($"{store.Directory}: group '{name}' {(a > next ? $"is missing experts {next}..{a - 1}" : $"has experts {a}..{next - 1} twice")} (a shard missing from the index?)");
                next = b;
            }
            if (next != experts) throw new QmoeException($"{store.Directory}: group '{name}' is missing experts {next}..{experts - 1} (a shard missing from the index?)");
            if (store.Contains(CompressedFormat.Codes(name)))
                throw new QmoeException($"{store.FileOf(CompressedFormat.Codes(name)).Path}: group '{name}' is stored both whole and in expert ranges");
        }
        var groupParts = spans.Select(sp => ReadPart(store, version, dict, dict4, name, sp.Base, sp.First, sp.End - sp.First, rows, cols)).ToList();
        if (groupParts.Count > 1 && groupParts.Any(p => p.NBit != null))
            throw new QmoeException($"{store.Directory}: group '{name}' has n-bit experts and is split over shards (not supported)");
        return new ExpertGroup
        {
            Name = name, Prefix = name[..marker], Kind = name[(marker + ".experts.".Length)..],
            Experts = experts, Rows = rows, Cols = cols, Parts = groupParts,
        };
    }

    private static ExpertGroupPart ReadPart(TensorStore store, int version, CodeDictionary dict, CodeDictionary? dict4, string group, string name,
        int first, int experts, int rows, int cols)
    {
        TensorInfo Tensor(string tensor, DType dtype, params long[] shape)
        {
            if (!store.Contains(tensor)) throw new QmoeException($"{store.Directory}: tensor '{tensor}' missing");
            var t = store.Info(tensor);
            if (t.DType != dtype || (shape.Length > 0 && !t.Shape.AsSpan().SequenceEqual(shape)))
                throw new QmoeException($"{store.FileOf(tensor).Path}: tensor '{tensor}' has {t.DType} {t.ShapeText}, expected {dtype} [{(shape.Length > 0 ? string.Join(", ", shape) : "n")}]");
            return t;
        }
        var codes = Tensor(CompressedFormat.Codes(name), DType.U16);
        var file = store.FileOf(codes.Name);
        if (codes.Shape.Length != 1) throw new QmoeException($"{file.Path}: tensor '{codes.Name}' has shape {codes.ShapeText}, expected one dimension");
        var expertOffsetsT = Tensor(CompressedFormat.ExpertOffsets(name), DType.I64, experts + 1L);
        string eoWhere = $"{store.FileOf(expertOffsetsT.Name).Path}: tensor '{expertOffsetsT.Name}'";
        // A part's tensors live in one shard, so that its views share one mapping.
        foreach (var other in new[] { expertOffsetsT.Name })
            if (store.FileOf(other) != file) throw new QmoeException($"{eoWhere}: not in the shard of '{codes.Name}' ({file.Path})");
        var eo = MemoryMarshal.Cast<byte, long>(file.Bytes(expertOffsetsT));
        if (eo[0] != 0) throw new QmoeException($"{eoWhere}: first offset {eo[0]}, not 0");
        var nbit = NBitGroup.Read(store, name, experts, rows, cols);
        for (int e = 0; e < experts; e++)
        {
            long n = eo[e + 1] - eo[e];
            if (nbit != null && nbit.IsPacked(e))
            {
                if (n != 0) throw new QmoeException($"{eoWhere}: expert {e} is bit-packed but has {n} dict16 codes");
                continue;
            }
            if (nbit != null && nbit.IsCoded(e) && dict4 == null)
                throw new QmoeException($"{eoWhere}: expert {e} is coded 2-bit, but the file has no '{CompressedFormat.FourLevelDictionaryTensor}'");
            // A row needs at least one code and at most one per pair.
            if (n < rows || n > (long)rows * TernaryEncoder.MaxCodesPerRow(cols))
                throw new QmoeException($"{eoWhere}: expert {first + e} has {n} codes, impossible for {rows} rows of {cols}");
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
            var tableValues = MemoryMarshal.Cast<byte, ushort>(store.FileOf(scaleTable.Name).Bytes(scaleTable));
            string scalesWhere = $"{store.FileOf(scales.Name).Path}: tensor '{scales.Name}'";
            int ternaryExperts = nbit == null ? experts : nbit.TernaryExperts;
            if (nbit != null && scales.ByteLength == ScaleCoding.FieldBytes(2L * ternaryExperts * rows, tableValues.Length))
                scaleValues = NBitGroup.SpreadTernaryScales(ScaleCoding.Decode(tableValues, store.FileOf(scales.Name).Bytes(scales),
                    2L * ternaryExperts * rows, scalesWhere), nbit.Types, rows);
            else // all-ternary, or an n-bit group written before issue 16's compact scales: fields for every expert
                scaleValues = ScaleCoding.Decode(tableValues, store.FileOf(scales.Name).Bytes(scales), 2L * experts * rows, scalesWhere);
        }
        if (store.FileOf(scales.Name) != file) throw new QmoeException($"{store.FileOf(scales.Name).Path}: tensor '{scales.Name}' is not in the shard of '{codes.Name}' ({file.Path})");

        long[] starts = eo.ToArray();
        ExpertCodes codesOf = e => ExpertCodeSpan(file, codes, starts[e], starts[e + 1]);
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
            rowOffsets = RowIndex.FromCodes(codesOf, eo, experts, rows, cols, dict, $"{file.Path}: tensor '{codes.Name}'",
                nbit == null ? default : nbit.Types, dict4);
        }
        if (index != null && store.FileOf(index.Name) != file) throw new QmoeException($"{store.FileOf(index.Name).Path}: tensor '{index.Name}' is not in the shard of '{codes.Name}' ({file.Path})");
        return new ExpertGroupPart
        {
            Base = name, First = first, Experts = experts, File = file,
            CodesTensor = codes, ExpertOffsetsTensor = expertOffsetsT, ScalesTensor = scales, ScaleTableTensor = scaleTable, IndexTensor = index,
            Scales = scaleValues, RowOffsets = rowOffsets, NBit = nbit,
        };
    }

    /// <summary>Codes [begin, end) of a codes tensor: a view into the mapping by pointer, so the tensor may exceed 2 GiB.</summary>
    private static unsafe ReadOnlySpan<ushort> ExpertCodeSpan(SafeTensorsFile file, TensorInfo codes, long begin, long end)
    {
        long n = end - begin;
        if (begin < 0 || n < 0 || end > codes.ElementCount || n > int.MaxValue)
            throw new QmoeException($"{file.Path}: tensor '{codes.Name}': codes [{begin}, {end}) out of range");
        return n == 0 ? ReadOnlySpan<ushort>.Empty : new ReadOnlySpan<ushort>((ushort*)file.Pointer(codes) + begin, (int)n);
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
        var p = g.PartOf(expert);
        int e = expert - p.First;
        var eo = MemoryMarshal.Cast<byte, long>(p.File.Bytes(p.ExpertOffsetsTensor));
        var rowOffsets = p.RowOffsets != null ? (ReadOnlySpan<int>)p.RowOffsets : MemoryMarshal.Cast<byte, int>(p.File.Bytes(p.IndexTensor!));
        var scales = p.Scales != null ? (ReadOnlySpan<ushort>)p.Scales : MemoryMarshal.Cast<byte, ushort>(p.File.Bytes(p.ScalesTensor));
        bool coded = p.NBit?.IsCoded(e) == true;
        return new ExpertMatrix
        {
            Rows = g.Rows, Cols = g.Cols,
            Codes = ExpertCodeSpan(p.File, p.CodesTensor, eo[e], eo[e + 1]),
            RowOffsets = rowOffsets.Slice(e * (g.Rows + 1), g.Rows + 1),
            Scales = scales.Slice(2 * e * g.Rows, 2 * g.Rows),
            GridScales = coded ? p.NBit!.GridScales(Store, e) : default,
            GridZeros = coded ? p.NBit!.GridZeros(Store, e) : default,
        };
    }

    private ReadOnlySpan<byte> Bytes(TensorInfo t) => Store.FileOf(t.Name).Bytes(t);

    /// <summary>Names of tensors that are not part of an expert group or the dictionary.</summary>
    public IEnumerable<TensorInfo> PlainTensors()
    {
        var grouped = Groups.SelectMany(g => g.Tensors).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        grouped.Add(DictionaryRecord.TensorName(Store, FormatVersion));
        grouped.Add(CompressedFormat.FourLevelDictionaryTensor);
        return Store.Names.Where(n => !grouped.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).Select(Store.Info);
    }

    public void Dispose() => Store.Dispose();
}
