using System.IO.Hashing;
using System.Text;
using System.Text.Json;

namespace Qmoe.IO;

/// <summary>
/// Streaming safetensors writer. Declare every tensor first (name, dtype, shape), then stream their bytes
/// in declaration order with <see cref="Write"/> (any chunking), then <see cref="Complete"/>. Data goes to a
/// temporary file; the header is written up front with fixed-width placeholders for the per-tensor XxHash64
/// (metadata key <c>xxhash64.NAME</c>) and patched at the end, so nothing is buffered in memory. Complete
/// fsyncs and renames to the final name; Dispose without Complete deletes the temporary.
/// </summary>
public sealed class SafeTensorsWriter : IDisposable
{
    public const string HashPrefix = "xxhash64.";
    private readonly string _path, _tmp;

    /// <summary>The final file name.</summary>
    public string Path => _path;
    private readonly Dictionary<string, string> _metadata;
    private readonly List<(string Name, DType DType, long[] Shape, long Bytes)> _decl = new();
    private FileStream? _fs;
    private int _current;
    private long _writtenInCurrent;
    private readonly XxHash64 _hash = new();
    private readonly List<string> _hashes = new();
    private bool _completed;

    public SafeTensorsWriter(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        _path = path;
        _tmp = AtomicFile.TempName(path);
        _metadata = metadata?.ToDictionary() ?? new();
    }

    public void Declare(string name, DType dtype, params long[] shape)
    {
        if (_fs != null) throw new InvalidOperationException("declare every tensor before writing data");
        if (_decl.Any(d => d.Name == name)) throw new ArgumentException($"tensor '{name}' declared twice");
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        _decl.Add((name, dtype, shape.ToArray(), checked(n * dtype.Size())));
    }

    /// <summary>Data bytes of the tensors declared so far (the data offset of the next one).</summary>
    public long DeclaredBytes => _decl.Sum(d => d.Bytes);

    private string Header(IReadOnlyList<string> hashes)
    {
        var sb = new StringBuilder();
        using (var ms = new MemoryStream())
        {
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in _metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                for (int i = 0; i < _decl.Count; i++) w.WriteString(HashPrefix + _decl[i].Name, hashes[i]);
                w.WriteEndObject();
                long off = 0;
                foreach (var d in _decl)
                {
                    w.WriteStartObject(d.Name);
                    w.WriteString("dtype", d.DType.Name());
                    w.WriteStartArray("shape"); foreach (var s in d.Shape) w.WriteNumberValue(s); w.WriteEndArray();
                    w.WriteStartArray("data_offsets"); w.WriteNumberValue(off); w.WriteNumberValue(off + d.Bytes); w.WriteEndArray();
                    w.WriteEndObject();
                    off += d.Bytes;
                }
                w.WriteEndObject();
            }
            sb.Append(Encoding.UTF8.GetString(ms.ToArray()));
        }
        // Pad with spaces so the data section starts 8-byte aligned (allowed by the format).
        int total = Encoding.UTF8.GetByteCount(sb.ToString());
        sb.Append(' ', (8 - total % 8) % 8);
        return sb.ToString();
    }

    private void Begin()
    {
        var placeholder = Enumerable.Repeat(new string('0', 16), _decl.Count).ToArray();
        byte[] header = Encoding.UTF8.GetBytes(Header(placeholder));
        try
        {
            _fs = new FileStream(_tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20);
            _fs.Write(BitConverter.GetBytes((long)header.Length));
            _fs.Write(header);
        }
        catch (IOException e) { Fail(e); }
        SkipEmpty();
    }

    private void SkipEmpty()
    {
        while (_current < _decl.Count && _decl[_current].Bytes == _writtenInCurrent)
        {
            _hashes.Add(_hash.GetCurrentHashAsUInt64().ToString("x16"));
            _hash.Reset();
            _current++;
            _writtenInCurrent = 0;
        }
    }

    /// <summary>Appends bytes to the current tensor (advancing to the next one as each fills).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        if (_fs == null) Begin();
        while (data.Length > 0)
        {
            if (_current >= _decl.Count) throw new InvalidOperationException("more data written than declared");
            long room = _decl[_current].Bytes - _writtenInCurrent;
            int n = (int)Math.Min(room, data.Length);
            try { _fs!.Write(data[..n]); }
            catch (IOException e) { Fail(e); }
            _hash.Append(data[..n]);
            _writtenInCurrent += n;
            data = data[n..];
            SkipEmpty();
        }
    }

    public void Write<T>(ReadOnlySpan<T> data) where T : unmanaged =>
        Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data));

    /// <summary>Patches hashes into the header, fsyncs, renames into place.</summary>
    public void Complete()
    {
        if (_fs == null) Begin();
        if (_current != _decl.Count)
            throw new InvalidOperationException($"tensor '{_decl[_current].Name}' incomplete: {_writtenInCurrent} of {_decl[_current].Bytes} bytes");
        byte[] header = Encoding.UTF8.GetBytes(Header(_hashes));
        try
        {
            _fs!.Position = 8;
            _fs.Write(header); // same length as the placeholder header: hashes are fixed-width hex
            _fs.Flush(flushToDisk: true);
            _fs.Dispose();
            _fs = null;
            File.Move(_tmp, _path, overwrite: true);
        }
        catch (IOException e) { Fail(e); }
        _completed = true;
    }

    private void Fail(IOException e)
    {
        _fs?.Dispose();
        _fs = null;
        AtomicFile.TryDelete(_tmp);
        throw new QmoeException($"{_path}: write failed: {e.Message}", e);
    }

    public void Dispose()
    {
        if (_completed) return;
        _fs?.Dispose();
        _fs = null;
        AtomicFile.TryDelete(_tmp);
    }

    /// <summary>Convenience: writes in-memory tensors (name, dtype, shape, bytes) as one file.</summary>
    public static void WriteAll(string path, IEnumerable<(string Name, DType DType, long[] Shape, byte[] Data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        using var w = new SafeTensorsWriter(path, metadata);
        foreach (var t in list) w.Declare(t.Name, t.DType, t.Shape);
        foreach (var t in list) w.Write(t.Data);
        w.Complete();
    }
}
