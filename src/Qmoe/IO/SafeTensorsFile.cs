using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Qmoe.IO;

/// <summary>
/// A memory-mapped safetensors file: 8-byte little-endian header length N, N bytes of JSON header, then the
/// tensor data. Opening validates the whole header (every offset in bounds, no overlaps, shape × dtype =
/// byte length) and maps the file read-only; tensor data is handed out as zero-copy spans over the mapping.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Headers above this size are refused before anything is allocated (HF files: a few MB at most).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private readonly MemoryMappedFile? _mmf;
    private readonly MemoryMappedViewAccessor? _view;
    private byte* _base;
    private byte* _mapBase;
    private readonly Dictionary<string, TensorInfo> _tensors;

    public string Path { get; }
    public long FileLength { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;
    /// <summary>The header's <c>__metadata__</c> string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensor names in file-offset order.</summary>
    public IReadOnlyList<string> Names { get; }
    public long HeaderLength { get; }

    private SafeTensorsFile(string path, long length, MemoryMappedFile? mmf, MemoryMappedViewAccessor? view,
        Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata, long headerLength)
    {
        Path = path; FileLength = length; _mmf = mmf; _view = view; _tensors = tensors; Metadata = metadata;
        HeaderLength = headerLength;
        Names = tensors.Values.OrderBy(t => t.Offset).ThenBy(t => t.Name, StringComparer.Ordinal).Select(t => t.Name).ToArray();
        if (view != null)
        {
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _mapBase = p;
            _base = p + view.PointerOffset;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>; throws <see cref="QmoeException"/> naming the file (and tensor) on any defect.</summary>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new QmoeException($"{path}: file not found");
        long length = new FileInfo(path).Length;
        if (length < 8) throw new QmoeException($"{path}: not a safetensors file (only {length} bytes, truncated?)");

        byte[] headerBytes;
        long n;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            Span<byte> lenBytes = stackalloc byte[8];
            fs.ReadExactly(lenBytes);
            n = BitConverter.ToInt64(lenBytes);
            if (n <= 0 || n > MaxHeaderBytes)
                throw new QmoeException($"{path}: header length {n} is absurd (file is {length} bytes)");
            if (8 + n > length)
                throw new QmoeException($"{path}: header length {n} runs past the end of the file ({length} bytes, truncated?)");
            headerBytes = new byte[n];
            fs.ReadExactly(headerBytes);
        }
        var (tensors, metadata) = ParseHeader(path, headerBytes, length - 8 - n, 8 + n);

        if (length == 8 + n) // no data: nothing to map
            return new SafeTensorsFile(path, length, null, null, tensors, metadata, n);
        var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = mmf.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        return new SafeTensorsFile(path, length, mmf, view, tensors, metadata, n);
    }

    private static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(
        string path, byte[] header, long dataLength, long dataStart)
    {
        // JsonDocument transcodes strings lazily (InvalidOperationException later): refuse bad UTF-8 up front.
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw new QmoeException($"{path}: header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.AsMemory().TrimEnd((byte)' ')); }
        catch (JsonException e) { throw new QmoeException($"{path}: header is not valid JSON ({e.Message})"); }
        catch (ArgumentException e) { throw new QmoeException($"{path}: header is not valid UTF-8 JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new QmoeException($"{path}: header is not a JSON object");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new QmoeException($"{path}: __metadata__ is not an object");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String) throw new QmoeException($"{path}: __metadata__.{m.Name} is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                tensors[prop.Name] = ParseEntry(path, prop, dataLength, dataStart);
            }
            // Non-overlap: sorted by start, each must end before the next begins.
            var sorted = tensors.Values.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset).ToArray();
            for (int i = 1; i < sorted.Length; i++)
                if (sorted[i].Offset < sorted[i - 1].Offset + sorted[i - 1].ByteLength)
                    throw new QmoeException($"{path}: tensor '{sorted[i].Name}' overlaps tensor '{sorted[i - 1].Name}'");
            return (tensors, metadata);
        }
    }

    private static TensorInfo ParseEntry(string path, JsonProperty prop, long dataLength, long dataStart)
    {
        string where = $"{path}: tensor '{prop.Name}'";
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object) throw new QmoeException($"{where}: entry is not an object");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new QmoeException($"{where}: missing dtype");
        if (!DTypes.TryParse(dt.GetString()!, out var dtype))
            throw new QmoeException($"{where}: unsupported dtype '{dt.GetString()}'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new QmoeException($"{where}: missing shape");
        var shape = new long[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0 || dim > (1L << 40))
                throw new QmoeException($"{where}: bad shape dimension {d}");
            shape[k++] = dim;
            try { count = checked(count * dim); }
            catch (OverflowException) { throw new QmoeException($"{where}: shape {sh} overflows"); }
        }
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new QmoeException($"{where}: missing data_offsets");
        if (off[0].ValueKind != JsonValueKind.Number || off[1].ValueKind != JsonValueKind.Number
            || !off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end))
            throw new QmoeException($"{where}: data_offsets are not integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw new QmoeException($"{where}: data_offsets [{begin}, {end}] out of bounds (data section is {dataLength} bytes; truncated file?)");
        long expected;
        try { expected = checked(count * dtype.Size()); }
        catch (OverflowException) { throw new QmoeException($"{where}: shape {sh} overflows"); }
        if (end - begin != expected)
            throw new QmoeException($"{where}: {end - begin} bytes of data but shape {sh} × {dtype} needs {expected}");
        return new TensorInfo(prop.Name, dtype, shape, dataStart + begin, end - begin);
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public TensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new QmoeException($"{Path}: tensor '{name}' not found");

    /// <summary>Pointer to a tensor's first byte inside the mapping (valid until Dispose).</summary>
    public byte* Pointer(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_base == null && t.ByteLength > 0, this);
        return _base + t.Offset;
    }

    /// <summary>Zero-copy view of a tensor's raw bytes (tensors up to 2 GiB).</summary>
    public ReadOnlySpan<byte> Bytes(string name) => Bytes(Info(name));

    public ReadOnlySpan<byte> Bytes(TensorInfo t)
    {
        if (t.ByteLength > int.MaxValue) throw new QmoeException($"{Path}: tensor '{t.Name}' is larger than 2 GiB; use Pointer()");
        if (t.ByteLength == 0) return ReadOnlySpan<byte>.Empty;
        return new ReadOnlySpan<byte>(Pointer(t), (int)t.ByteLength);
    }

    /// <summary>Zero-copy typed view; the dtype must match <typeparamref name="T"/>'s size and kind.</summary>
    public ReadOnlySpan<T> Span<T>(string name, DType expected) where T : unmanaged
    {
        var t = Info(name);
        if (t.DType != expected) throw new QmoeException($"{Path}: tensor '{name}' has dtype {t.DType}, expected {expected}");
        return MemoryMarshal.Cast<byte, T>(Bytes(t));
    }

    /// <summary>Reads a floating-point tensor (F32, BF16 or F16) into a new f32 array.</summary>
    public float[] ReadFloat32(string name) => ReadFloat32(Info(name));

    public float[] ReadFloat32(TensorInfo t)
    {
        var dst = new float[t.ElementCount];
        ReadFloat32(t, dst);
        return dst;
    }

    public void ReadFloat32(TensorInfo t, Span<float> dst)
    {
        var bytes = Bytes(t);
        switch (t.DType)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(bytes).CopyTo(dst); break;
            case DType.BF16: BFloat16.ToFloat(MemoryMarshal.Cast<byte, ushort>(bytes), dst); break;
            case DType.F16:
                var h = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < h.Length; i++) dst[i] = BFloat16.HalfToFloat(h[i]);
                break;
            default: throw new QmoeException($"{Path}: tensor '{t.Name}' has dtype {t.DType}, expected a float type");
        }
    }

    /// <summary>
    /// Like <see cref="ReadFloat32(TensorInfo, Span{float})"/> but with positioned reads (pread) instead of the
    /// mapping: for streaming through a checkpoint larger than RAM, where touching mapped pages would count them in
    /// the process's resident set until the kernel reclaims them. Data goes through the page cache only.
    /// </summary>
    public void ReadFloat32Unmapped(TensorInfo t, Span<float> dst)
    {
        if (t.DType is not (DType.F32 or DType.BF16)) { ReadFloat32(t, dst); return; }
        var raw = new byte[t.ByteLength];
        ReadUnmapped(t, raw);
        if (t.DType == DType.F32) MemoryMarshal.Cast<byte, float>(raw).CopyTo(dst);
        else BFloat16.ToFloat(MemoryMarshal.Cast<byte, ushort>(raw), dst);
    }

    /// <summary>A tensor's raw bytes by positioned reads (see <see cref="ReadFloat32Unmapped"/>): nothing of the mapping becomes resident.</summary>
    public byte[] ReadBytesUnmapped(TensorInfo t)
    {
        var raw = new byte[t.ByteLength];
        ReadUnmapped(t, raw);
        return raw;
    }

    /// <summary>A tensor's raw bytes by positioned reads (see <see cref="ReadFloat32Unmapped"/>): nothing of the mapping becomes resident.</summary>
    public void ReadUnmapped(TensorInfo t, Span<byte> dst)
    {
        if (dst.Length != t.ByteLength) throw new ArgumentException($"{dst.Length} bytes for tensor '{t.Name}' of {t.ByteLength}");
        using var handle = File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        int got = RandomAccess.Read(handle, dst, t.Offset);
        if (got != dst.Length) throw new QmoeException($"{Path}: tensor '{t.Name}' truncated ({got} of {dst.Length} bytes read)");
    }

    /// <summary>Reads an integer tensor (I32, I64, U16, U8, U32) into a new int array (values must fit in int).</summary>
    public int[] ReadInt32(string name)
    {
        var t = Info(name);
        var bytes = Bytes(t);
        var dst = new int[t.ElementCount];
        switch (t.DType)
        {
            case DType.I32: MemoryMarshal.Cast<byte, int>(bytes).CopyTo(dst); break;
            case DType.I64:
                var l = MemoryMarshal.Cast<byte, long>(bytes);
                for (int i = 0; i < l.Length; i++)
                    dst[i] = l[i] is >= int.MinValue and <= int.MaxValue ? (int)l[i] : throw new QmoeException($"{Path}: tensor '{name}' value {l[i]} out of int range");
                break;
            case DType.U16: var u = MemoryMarshal.Cast<byte, ushort>(bytes); for (int i = 0; i < u.Length; i++) dst[i] = u[i]; break;
            case DType.U8: for (int i = 0; i < bytes.Length; i++) dst[i] = bytes[i]; break;
            default: throw new QmoeException($"{Path}: tensor '{name}' has dtype {t.DType}, expected an integer type");
        }
        return dst;
    }

    /// <summary>Drops the mapping's touched pages from the resident set (they stay in the page cache; see <see cref="MappedPages"/>).</summary>
    public void DropResident()
    {
        if (_base != null) MappedPages.DropResident(_mapBase, _view!.SafeMemoryMappedViewHandle.ByteLength);
    }

    public void Dispose()
    {
        if (_view != null && _base != null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _base = null;
        }
        _view?.Dispose();
        _mmf?.Dispose();
    }
}
