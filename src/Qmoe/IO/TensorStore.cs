using System.Text.Json;

namespace Qmoe.IO;

/// <summary>
/// The weights of a model directory: one <c>model.safetensors</c>, or the shards listed in Hugging Face's
/// <c>model.safetensors.index.json</c> (<c>weight_map</c>: tensor name → shard file). Every shard is
/// memory-mapped; nothing is read into RAM until a tensor is asked for.
/// </summary>
public sealed class TensorStore : IDisposable
{
    private readonly Dictionary<string, SafeTensorsFile> _byTensor = new(StringComparer.Ordinal);
    private readonly List<SafeTensorsFile> _files = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, float[]> _dequantized = new(StringComparer.Ordinal);

    public string Directory { get; }
    /// <summary>
    /// Block size [rows, cols] of FP8 weights' <c>weight_scale_inv</c> (config's <c>quantization_config</c>
    /// weight_block_size), set by the family's loader; null = the checkpoint is not FP8 and F8 tensors are refused.
    /// </summary>
    public (int Rows, int Cols)? Fp8Block { get; set; }
    public IReadOnlyList<SafeTensorsFile> Files => _files;
    public IEnumerable<string> Names => _byTensor.Keys;

    private TensorStore(string dir) { Directory = dir; }

    /// <summary>
    /// Opens <paramref name="dir"/> (FP8 weights dequantized with <paramref name="fp8Block"/>, if given) and hands the
    /// store to <paramref name="owner"/>, which keeps it (a model); the store is disposed if <paramref name="owner"/> throws.
    /// </summary>
    public static T OpenOwned<T>(string dir, Func<TensorStore, T> owner, (int Rows, int Cols)? fp8Block = null)
    {
        var store = Open(dir);
        store.Fp8Block = fp8Block;
        try { return owner(store); }
        catch { store.Dispose(); throw; }
    }

    public static TensorStore Open(string dir)
    {
        var store = new TensorStore(dir);
        try
        {
            string index = System.IO.Path.Combine(dir, "model.safetensors.index.json");
            string single = System.IO.Path.Combine(dir, "model.safetensors");
            if (File.Exists(index)) store.OpenSharded(index);
            else if (File.Exists(single)) store.Add(SafeTensorsFile.Open(single));
            else throw new QmoeException($"{dir}: no model.safetensors or model.safetensors.index.json");
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    private void OpenSharded(string indexPath)
    {
        Dictionary<string, string> map;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new QmoeException($"{indexPath}: not a JSON object");
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new QmoeException($"{indexPath}: missing weight_map");
            map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new QmoeException($"{indexPath}: weight_map['{p.Name}'] is not a string (a shard file name)");
                if (!map.TryAdd(p.Name, p.Value.GetString()!))
                    throw new QmoeException($"{indexPath}: weight_map names tensor '{p.Name}' twice");
            }
        }
        catch (JsonException e) { throw new QmoeException($"{indexPath}: not valid JSON ({e.Message})"); }
        catch (ArgumentException e) { throw new QmoeException($"{indexPath}: not valid UTF-8 JSON ({e.Message})"); }
        catch (InvalidOperationException e) { throw new QmoeException($"{indexPath}: not valid UTF-8 JSON ({e.Message})"); }
        var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        foreach (var shard in map.Values.Distinct())
        {
            if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                throw new QmoeException($"{indexPath}: bad shard name '{shard}'");
            var f = SafeTensorsFile.Open(System.IO.Path.Combine(Directory, shard));
            _files.Add(f);
            shards[shard] = f;
        }
        foreach (var (name, shard) in map)
        {
            var f = shards[shard];
            if (!f.Contains(name)) throw new QmoeException($"{f.Path}: tensor '{name}' listed in the index is missing");
            _byTensor[name] = f;
        }
    }

    private void Add(SafeTensorsFile f)
    {
        _files.Add(f);
        foreach (var name in f.Tensors.Keys) _byTensor[name] = f;
    }

    public bool Contains(string name) => _byTensor.ContainsKey(name);

    public SafeTensorsFile FileOf(string name) =>
        _byTensor.TryGetValue(name, out var f) ? f : throw new QmoeException($"{Directory}: tensor '{name}' not found");

    public TensorInfo Info(string name) => FileOf(name).Info(name);

    /// <summary>Reads a float tensor as f32, checking its shape.</summary>
    public float[] ReadFloat32(string name, params long[] shape)
    {
        var f = FileOf(name);
        var t = f.Info(name);
        CheckShape(t, shape);
        return f.ReadFloat32(t);
    }

    /// <summary>
    /// Reads weight matrix <paramref name="name"/> [rows, cols] as f32 into <paramref name="dst"/>: F32/BF16/F16 as
    /// stored, F8_E4M3 dequantized with its <c>{name}_scale_inv</c> block scales. <paramref name="unmapped"/> reads
    /// with positioned reads instead of the mapping (streaming a checkpoint larger than RAM).
    /// </summary>
    public void ReadWeight(string name, int rows, int cols, Span<float> dst, bool unmapped = false)
    {
        var f = FileOf(name);
        var t = f.Info(name);
        CheckShape(t, new long[] { rows, cols });
        if (t.DType != DType.F8_E4M3)
        {
            if (unmapped) f.ReadFloat32Unmapped(t, dst); else f.ReadFloat32(t, dst);
            return;
        }
        var (br, bc, scaleName) = CheckFp8(name, rows, cols);
        var scales = ReadFloat32(scaleName); // shape checked by CheckFp8
        var raw = unmapped ? f.ReadBytesUnmapped(t) : f.Bytes(t);
        Fp8E4M3.DequantizeBlocks(raw, rows, cols, scales, br, bc, dst);
    }

    /// <summary>Checks that FP8 weight <paramref name="name"/> [rows, cols] can be dequantized (config's block size, its
    /// scale tensor and that tensor's shape) and returns the block size and the scales' name.</summary>
    public (int BlockRows, int BlockCols, string ScaleName) CheckFp8(string name, int rows, int cols)
    {
        var f = FileOf(name);
        var (br, bc) = Fp8Block ?? throw new QmoeException(
            $"{f.Path}: tensor '{name}' has dtype F8_E4M3 but config.json has no quantization_config with quant_method fp8");
        string scaleName = name + "_scale_inv";
        if (!Contains(scaleName)) throw new QmoeException($"{f.Path}: FP8 tensor '{name}' has no '{scaleName}'");
        CheckShape(Info(scaleName), [(rows + br - 1) / br, (cols + bc - 1) / bc]);
        return (br, bc, scaleName);
    }

    /// <summary>
    /// FP8 weight <paramref name="name"/> [rows, cols] dequantized to f32, cached until <see cref="DropResident"/>: the
    /// checkpoint's FP8 weights are materialised only when a pass uses them (DeepSeek-V3's non-expert weights alone
    /// are ~17B parameters, 68 GB in f32), and a compression run under a memory budget holds only the current block's.
    /// </summary>
    public float[] Dequantized(string name, int rows, int cols) => _dequantized.GetOrAdd(name, n =>
    {
        var w = new float[(long)rows * cols];
        ReadWeight(n, rows, cols, w);
        return w;
    });

    public void CheckShape(TensorInfo t, long[] shape)
    {
        if (shape.Length > 0 && !t.Shape.AsSpan().SequenceEqual(shape))
            throw new QmoeException($"{FileOf(t.Name).Path}: tensor '{t.Name}' has shape {t.ShapeText}, expected [{string.Join(", ", shape)}]");
    }

    /// <summary>Drops every shard's touched pages from the resident set (the weights stay mapped and in the page cache)
    /// and the cache of dequantized FP8 weights (they are dequantized again when next used).</summary>
    public void DropResident()
    {
        foreach (var f in _files) f.DropResident();
        _dequantized.Clear();
    }

    /// <summary>The tensors whose names start with <paramref name="prefix"/>.</summary>
    public IEnumerable<TensorInfo> TensorsUnder(string prefix) =>
        _byTensor.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(kv => kv.Value.Info(kv.Key));

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
