using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Qmoe.IO;

namespace Qmoe.Codec;

/// <summary>Returns a tensor's bytes when the writer needs them (e.g. a span over the memory-mapped input).</summary>
public delegate ReadOnlySpan<byte> TensorBytes();

/// <summary>A tensor copied unchanged into the compressed model (attention, embeddings, router, dense layers...).</summary>
public sealed record PlainTensor(string Name, DType DType, long[] Shape, TensorBytes Bytes);

/// <summary>How the writer chooses the dictionary stored in the file.</summary>
public enum DictionaryChoice
{
    /// <summary>QMoE's default (i.i.d. trits, p0 = 0.885).</summary>
    Default,
    /// <summary>Several candidates (default, i.i.d. at the measured zero fraction, the measured pair statistics...)
    /// are tried on a sample of the model's rows; the one giving the fewest codes is kept.</summary>
    Fitted,
}

/// <summary>
/// Writes a compressed model directory (SPEC §5) while the pipeline produces it: plain tensors are declared up
/// front and read only at <see cref="Complete"/>; expert groups arrive one at a time and are spooled to a
/// temporary file (trits packed 4 per byte, plus scales), so memory holds one group at most. Complete picks the
/// dictionary, encodes each group into a second temporary file, then streams everything into
/// <c>model.safetensors</c> (atomically, with per-tensor XxHash64) and writes <c>config.json</c>.
/// <code>
/// using var w = new CompressedModelWriter(outDir, inputConfig, new JsonObject { ["method"] = "gptq", ["damp"] = 0.1 });
/// foreach (var name in nonExpertNames)   // spans over the memory-mapped input, read at Complete
///     w.AddTensor(new PlainTensor(name, info.DType, info.Shape, () => file.Bytes(info)));
/// foreach (var (prefix, kind) in groups) // as each group is quantized: E matrices of trits + bf16 (min, max)
///     w.AddExpertGroup(prefix, kind, experts);
/// w.Complete();                          // without it, Dispose deletes the temporary files
/// </code>
/// </summary>
public sealed class CompressedModelWriter : IDisposable
{
    private sealed record GroupEntry(string Name, int Experts, int Rows, int Cols, long TritOffset, NBitPart? NBit = null);
    // A group with n-bit experts (issue 16): types, the packed bytes' place in the n-bit spool, the grids.
    private sealed record NBitPart(byte[] Types, long[] PackedOffsets, long SpoolOffset, float[] RowScales, byte[] RowZeros);
    private sealed record EncodedGroup(GroupEntry Group, long CodesOffset, long Codes, long[] ExpertOffsets,
        long IndexOffset, DType IndexType, long IndexBytes, long ScalesOffset, int ScaleTable, long ScaleBytes);

    private readonly string _dir;
    private readonly JsonObject _config;
    private readonly JsonObject _settings;
    private readonly DictionaryChoice _choice;
    private readonly DictionaryStorage _dictionaryStorage;
    private readonly int _formatVersion, _threads;
    private readonly RowIndexKind _rowIndex;
    private readonly List<PlainTensor> _plain = new();
    private readonly List<GroupEntry> _groups = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly string _tritSpoolPath, _codeSpoolPath, _nbitSpoolPath;
    private FileStream? _tritSpool, _nbitSpool;
    private bool _done;

    /// <summary>The dictionary Complete chose (null before).</summary>
    public CodeDictionary? Dictionary { get; private set; }

    /// <param name="outDir">created if missing</param>
    /// <param name="inputConfig">the input model's config.json (copied, plus <c>quantization_config</c>)</param>
    /// <param name="settings">compression settings for <c>quantization_config</c> (method, damp, calibration...)</param>
    /// <param name="dictionary">a dictionary fitted to the model at <see cref="Complete"/> (default; 3-4% fewer code
    /// bits on real weights), or QMoE's default</param>
    /// <param name="formatVersion">1 (SPEC §5) or 2 (row boundaries implied by the codes, trie-mask dictionary; docs/FORMAT.md)</param>
    /// <param name="threads">encoder threads (≤ 0: all cores)</param>
    /// <param name="storeRowCounts">v2 only: store per-row code counts (cheaper open for huge models) instead of
    /// leaving row boundaries implied by the codes</param>
    /// <param name="dictionaryStorage">v2 only: the dictionary as a trie or as the parameters it is regenerated from;
    /// Auto takes the smaller (<see cref="DictionaryRecord.Encode"/>)</param>
    public CompressedModelWriter(string outDir, JsonObject inputConfig, JsonObject? settings = null,
        DictionaryChoice dictionary = DictionaryChoice.Fitted, int formatVersion = CompressedFormat.LatestVersion, int threads = 0,
        bool storeRowCounts = false, DictionaryStorage dictionaryStorage = DictionaryStorage.Auto)
    {
        if (!CompressedFormat.IsKnownVersion(formatVersion)) throw new QmoeException($"unknown format_version {formatVersion}");
        Directory.CreateDirectory(outDir);
        _dir = outDir;
        _config = (JsonObject)inputConfig.DeepClone();
        _settings = settings == null ? new JsonObject() : (JsonObject)settings.DeepClone();
        _choice = dictionary;
        _dictionaryStorage = dictionaryStorage;
        _formatVersion = formatVersion;
        _threads = threads;
        _rowIndex = formatVersion == CompressedFormat.Version1 ? RowIndexKind.Offsets : storeRowCounts ? RowIndexKind.Counts : RowIndexKind.Implicit;
        _tritSpoolPath = Path.Combine(outDir, $".qmoe-trits.tmp-{Environment.ProcessId}");
        _codeSpoolPath = Path.Combine(outDir, $".qmoe-codes.tmp-{Environment.ProcessId}");
        _nbitSpoolPath = Path.Combine(outDir, $".qmoe-nbit.tmp-{Environment.ProcessId}");
    }

    private void Claim(string name)
    {
        if (_done) throw new InvalidOperationException("writer already completed");
        if (!_names.Add(name)) throw new QmoeException($"{_dir}: tensor '{name}' added twice");
    }

    /// <summary>Declares a tensor copied unchanged; its bytes are requested once, during <see cref="Complete"/>.</summary>
    public void AddTensor(PlainTensor tensor)
    {
        Claim(tensor.Name);
        _plain.Add(tensor);
    }

    /// <summary>
    /// Adds the experts of one sparse layer and kind (e.g. prefix "encoder.block.1.layer.1.mlp", kind "wi"); all
    /// experts must share one shape. The matrices may be dropped as soon as this returns.
    /// </summary>
    public void AddExpertGroup(string prefix, string kind, IReadOnlyList<TernaryMatrix> experts) =>
        AddExpertGroup(prefix, kind, experts.Select(StoredExpert.Of).ToList());

    /// <summary>
    /// Adds a group whose experts may be ternary or n-bit (issue 16). An all-ternary group is written exactly as by the
    /// ternary overload; otherwise the group also gets the type tensors of <see cref="NBitGroup"/> (format version 2 only).
    /// </summary>
    public void AddExpertGroup(string prefix, string kind, IReadOnlyList<StoredExpert> experts)
    {
        string name = CompressedFormat.Group(prefix, kind);
        Claim(name);
        if (experts.Count == 0) throw new QmoeException($"{name}: no experts");
        int rows = experts[0].Rows, cols = experts[0].Cols;
        _tritSpool ??= new FileStream(_tritSpoolPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20);
        long offset = _tritSpool.Position;
        NBitPart? nbit = null;
        if (experts.Any(x => x.NBit != null))
        {
            if (_formatVersion == CompressedFormat.Version1) throw new QmoeException($"{name}: n-bit experts need format_version 2");
            _nbitSpool ??= new FileStream(_nbitSpoolPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20);
            var nbitExperts = experts.Where(x => x.NBit != null).Select(x => x.NBit!).ToList();
            nbit = new NBitPart(experts.Select(x => x.Type).ToArray(), new long[experts.Count + 1], _nbitSpool.Position,
                new float[(long)nbitExperts.Count * rows], new byte[(long)nbitExperts.Count * rows]);
        }
        int ordinal = 0;
        for (int e = 0; e < experts.Count; e++)
        {
            if (experts[e].NBit is { } p)
            {
                p.Validate($"{name} expert {e}");
                if (p.Rows != rows || p.Cols != cols)
                    throw new QmoeException($"{name}: expert {e} has shape [{p.Rows}, {p.Cols}], expert 0 has [{rows}, {cols}]");
                _nbitSpool!.Write(p.Packed);
                nbit!.PackedOffsets[e + 1] = nbit.PackedOffsets[e] + p.Packed.Length;
                p.RowScales.CopyTo(nbit.RowScales, ordinal * rows);
                p.RowZeros.CopyTo(nbit.RowZeros, ordinal * rows);
                ordinal++;
                continue;
            }
            if (nbit != null) nbit.PackedOffsets[e + 1] = nbit.PackedOffsets[e];
            var m = experts[e].Ternary!;
            m.Validate($"{name} expert {e}");
            if (m.Rows != rows || m.Cols != cols)
                throw new QmoeException($"{name}: expert {e} has shape [{m.Rows}, {m.Cols}], expert 0 has [{rows}, {cols}]");
            int bad = m.Trits.AsSpan().IndexOfAnyInRange((byte)3, (byte)255);
            if (bad >= 0) throw new QmoeException($"{name}: expert {e} has trit {m.Trits[bad]} (must be 0, 1 or 2)");
            _tritSpool.Write(TritPacking.Pack(m.Trits));
            _tritSpool.Write(MemoryMarshal.AsBytes(m.Scales.AsSpan()));
        }
        _groups.Add(new GroupEntry(name, experts.Count, rows, cols, offset, nbit));
    }

    /// <summary>The group's experts in order: ternary ones from the spool, null for n-bit ones.</summary>
    private IEnumerable<TernaryMatrix?> ReadSpooledExperts(GroupEntry g)
    {
        var fs = _tritSpool!;
        long packed = TritPacking.PackedLength((long)g.Rows * g.Cols);
        var buffer = new byte[packed];
        var scales = new ushort[2 * g.Rows];
        fs.Position = g.TritOffset;
        for (int e = 0; e < g.Experts; e++)
        {
            if (g.NBit != null && g.NBit.Types[e] != NBitGroup.TernaryType) { yield return null; continue; }
            fs.ReadExactly(buffer);
            fs.ReadExactly(MemoryMarshal.AsBytes(scales.AsSpan()));
            var trits = new byte[(long)g.Rows * g.Cols];
            TritPacking.Unpack(buffer, trits);
            yield return new TernaryMatrix(g.Rows, g.Cols, trits, (ushort[])scales.Clone());
        }
    }

    /// <summary>Chooses the dictionary, encodes every group and writes model.safetensors and config.json atomically.</summary>
    public void Complete()
    {
        if (_done) throw new InvalidOperationException("writer already completed");
        try
        {
            // With no ternary expert at all (a uniform n-bit model) there is nothing to fit: QMoE's default is stored.
            bool anyTernary = _groups.Any(g => g.NBit == null || g.NBit.Types.Contains(NBitGroup.TernaryType));
            var dict = _choice == DictionaryChoice.Default || !anyTernary ? CodeDictionary.Default : DictionaryFitter.Fit(SampleRows());
            // v2 stores the trie mask, which numbers codes in breadth-first order: encode with that numbering.
            Dictionary = _formatVersion == CompressedFormat.Version1 ? dict : dict.Canonical();
            var encoded = EncodeGroups(Dictionary);
            WriteSafeTensors(encoded, Dictionary);
            WriteConfig(Dictionary);
            _done = true;
        }
        catch (IOException e) { throw new QmoeException($"{_dir}: write failed: {e.Message}", e); }
        finally { DeleteSpools(); }
    }

    /// <summary>Up to 2^22 trits of rows spread evenly over all groups, for dictionary fitting.</summary>
    private IEnumerable<byte[]> SampleRows()
    {
        long total = _groups.Sum(g => (long)g.Experts * g.Rows * g.Cols);
        long stride = Math.Max(1, total / (1 << 22));
        long seen = 0;
        foreach (var g in _groups)
            foreach (var m in ReadSpooledExperts(g).OfType<TernaryMatrix>())
                for (int r = 0; r < m.Rows; r++, seen += m.Cols)
                    if (seen / stride != (seen + m.Cols) / stride)
                        yield return m.Trits.AsSpan(r * m.Cols, m.Cols).ToArray();
    }

    private List<EncodedGroup> EncodeGroups(CodeDictionary dict)
    {
        var result = new List<EncodedGroup>();
        using var spool = new FileStream(_codeSpoolPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        foreach (var g in _groups)
        {
            long codesOffset = spool.Position;
            var expertOffsets = new long[g.Experts + 1];
            var rowOffsets = new int[g.Experts][];
            var scales = new List<ushort[]>();
            int e = 0;
            foreach (var m in ReadSpooledExperts(g))
            {
                if (m == null) // n-bit expert: no codes, rows all empty, (0, 0) ternary scales
                {
                    expertOffsets[e + 1] = expertOffsets[e];
                    rowOffsets[e] = new int[g.Rows + 1];
                    scales.Add(new ushort[2 * g.Rows]);
                    e++;
                    continue;
                }
                var enc = TernaryEncoder.Encode(m.Trits, m.Rows, m.Cols, dict, _threads);
                spool.Write(MemoryMarshal.AsBytes(enc.Codes.AsSpan()));
                expertOffsets[e + 1] = expertOffsets[e] + enc.Codes.Length;
                rowOffsets[e] = enc.RowOffsets;
                scales.Add(m.Scales);
                e++;
            }
            long indexOffset = spool.Position;
            DType indexType = RowIndex.Write(spool, rowOffsets, _rowIndex);
            long scalesOffset = spool.Position;
            int tableCount = 0;
            if (_formatVersion == CompressedFormat.Version1)
                foreach (var s in scales) spool.Write(MemoryMarshal.AsBytes(s.AsSpan()));
            else
            {
                var (table, fields) = ScaleCoding.Encode(scales.SelectMany(s => s).ToArray());
                spool.Write(MemoryMarshal.AsBytes(table.AsSpan()));
                spool.Write(fields);
                tableCount = table.Length;
            }
            result.Add(new EncodedGroup(g, codesOffset, expertOffsets[^1], expertOffsets, indexOffset, indexType,
                scalesOffset - indexOffset, scalesOffset, tableCount, spool.Position - scalesOffset));
        }
        spool.Flush();
        return result;
    }

    private void WriteSafeTensors(List<EncodedGroup> groups, CodeDictionary dict)
    {
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            [CompressedFormat.FormatVersionKey] = _formatVersion.ToString(),
        };
        foreach (var g in groups)
            metadata[CompressedFormat.ShapeKeyPrefix + g.Group.Name] = $"{g.Group.Experts},{g.Group.Rows},{g.Group.Cols}";
        using var w = new SafeTensorsWriter(Path.Combine(_dir, CompressedFormat.WeightsFile), metadata);
        foreach (var t in _plain) w.Declare(t.Name, t.DType, t.Shape);
        foreach (var g in groups)
        {
            var (name, experts, rows) = (g.Group.Name, (long)g.Group.Experts, (long)g.Group.Rows);
            w.Declare(CompressedFormat.Codes(name), DType.U16, g.Codes);
            w.Declare(CompressedFormat.ExpertOffsets(name), DType.I64, experts + 1);
            if (_rowIndex == RowIndexKind.Offsets) w.Declare(CompressedFormat.RowOffsets(name), DType.I32, experts, rows + 1);
            else if (_rowIndex == RowIndexKind.Counts) w.Declare(CompressedFormat.RowCounts(name), g.IndexType, experts, rows);
            if (_formatVersion == CompressedFormat.Version1) w.Declare(CompressedFormat.Scales(name), DType.BF16, experts, rows, 2);
            else
            {
                w.Declare(CompressedFormat.ScaleTable(name), DType.U16, g.ScaleTable);
                w.Declare(CompressedFormat.ScaleFields(name), DType.U8, ScaleCoding.FieldBytes(2 * experts * rows, g.ScaleTable));
            }
            if (g.Group.NBit is { } nb)
            {
                w.Declare(NBitGroup.ExpertTypes(name), DType.U8, experts);
                w.Declare(NBitGroup.Packed(name), DType.U8, nb.PackedOffsets[^1]);
                w.Declare(NBitGroup.PackedOffsets(name), DType.I64, experts + 1);
                w.Declare(NBitGroup.RowScales(name), DType.F32, nb.RowScales.Length / rows, rows);
                w.Declare(NBitGroup.RowZeros(name), DType.U8, nb.RowZeros.Length / rows, rows);
            }
        }
        var storedDict = DictionaryRecord.Encode(dict, _formatVersion, _dictionaryStorage, w.DeclaredBytes);
        w.Declare(storedDict.Name, storedDict.DType, storedDict.Shape);

        foreach (var t in _plain)
        {
            var bytes = t.Bytes();
            long expected = t.Shape.Aggregate(1L, (a, b) => a * b) * t.DType.Size();
            if (bytes.Length != expected) throw new QmoeException($"{t.Name}: {bytes.Length} bytes for shape [{string.Join(", ", t.Shape)}] × {t.DType}");
            w.Write(bytes);
        }
        using (var spool = new FileStream(_codeSpoolPath, FileMode.Open, FileAccess.Read, FileShare.None, 1 << 20))
        {
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            void Copy(long offset, long length)
            {
                spool.Position = offset;
                while (length > 0)
                {
                    int n = (int)Math.Min(length, buffer.Length);
                    spool.ReadExactly(buffer, 0, n);
                    w.Write(buffer.AsSpan(0, n));
                    length -= n;
                }
            }
            foreach (var g in groups)
            {
                Copy(g.CodesOffset, 2 * g.Codes);
                w.Write<long>(g.ExpertOffsets);
                Copy(g.IndexOffset, g.IndexBytes);
                Copy(g.ScalesOffset, g.ScaleBytes);
                if (g.Group.NBit is { } nb)
                {
                    w.Write<byte>(nb.Types);
                    _nbitSpool!.Flush();
                    _nbitSpool.Position = nb.SpoolOffset;
                    for (long left = nb.PackedOffsets[^1]; left > 0;)
                    {
                        int n = (int)Math.Min(left, buffer.Length);
                        _nbitSpool.ReadExactly(buffer, 0, n);
                        w.Write(buffer.AsSpan(0, n));
                        left -= n;
                    }
                    w.Write<long>(nb.PackedOffsets);
                    w.Write<float>(nb.RowScales);
                    w.Write<byte>(nb.RowZeros);
                }
            }
            ArrayPool<byte>.Shared.Return(buffer);
        }
        w.Write(storedDict.Bytes);
        w.Complete();
    }

    private void WriteConfig(CodeDictionary dict)
    {
        var q = new JsonObject();
        foreach (var (k, v) in _settings) q[k] = v?.DeepClone();
        // A quantized input (e.g. an FP8 checkpoint) keeps its own quantization_config for the tensors copied as they were.
        if (_config["quantization_config"] is JsonObject input) q["base_quantization_config"] = input.DeepClone();
        q["quant_method"] = CompressedFormat.QuantMethod;
        q["format_version"] = _formatVersion;
        var types = _groups.SelectMany(g => g.NBit?.Types ?? [NBitGroup.TernaryType]).Distinct().ToList();
        q["bits"] = types.Count > 1 ? "mixed" : types.Count == 0 || types[0] == NBitGroup.TernaryType ? "ternary" : types[0].ToString();
        q["codebook"] = CompressedFormat.Codebook;
        q["dictionary"] = dict.Source;
        _config["quantization_config"] = q;
        AtomicFile.WriteAllText(Path.Combine(_dir, CompressedFormat.ConfigFile),
            _config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    private void DeleteSpools()
    {
        _tritSpool?.Dispose();
        _tritSpool = null;
        _nbitSpool?.Dispose();
        _nbitSpool = null;
        AtomicFile.TryDelete(_tritSpoolPath);
        AtomicFile.TryDelete(_nbitSpoolPath);
        AtomicFile.TryDelete(_codeSpoolPath);
    }

    /// <summary>Without <see cref="Complete"/>: deletes the temporary files and writes nothing under the final names.</summary>
    public void Dispose() => DeleteSpools();
}
