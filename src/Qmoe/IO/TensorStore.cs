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

    public string Directory { get; }
    public IReadOnlyList<SafeTensorsFile> Files => _files;
    public IEnumerable<string> Names => _byTensor.Keys;

    private TensorStore(string dir) { Directory = dir; }

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
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new QmoeException($"{indexPath}: missing weight_map");
            map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String) throw new QmoeException($"{indexPath}: weight_map entry '{p.Name}' is not a file name");
                if (!map.TryAdd(p.Name, p.Value.GetString()!))
                    throw new QmoeException($"{indexPath}: weight_map names tensor '{p.Name}' twice");
            }
        }
        catch (JsonException e) { throw new QmoeException($"{indexPath}: not valid JSON ({e.Message})"); }
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

    public void CheckShape(TensorInfo t, long[] shape)
    {
        if (shape.Length > 0 && !t.Shape.AsSpan().SequenceEqual(shape))
            throw new QmoeException($"{FileOf(t.Name).Path}: tensor '{t.Name}' has shape {t.ShapeText}, expected [{string.Join(", ", shape)}]");
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
