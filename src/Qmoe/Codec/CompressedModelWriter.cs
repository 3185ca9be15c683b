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
/// Writes a compressed model directory (SPEC §5, docs/FORMAT.md) while the pipeline produces it: plain tensors are
/// declared up front and read only at <see cref="Complete"/>; expert groups arrive one expert at a time and are
/// spooled to a temporary file (trits packed 4 per byte, plus scales). Complete picks the dictionary, encodes the
/// experts one at a time into a second temporary file, then streams everything into <c>model.safetensors</c> — or,
/// with a shard size, into Hugging Face-style shards <c>model-0000k-of-0000n.safetensors</c> plus
/// <c>model.safetensors.index.json</c>, a group split over shards by expert range — atomically, with per-tensor
/// XxHash64 in each file, and writes <c>config.json</c>. Memory holds one expert's trits and codes at a time, plus
/// 4 bytes per row of the current group (its scales, and its row offsets when a row index is stored).
/// <code>
/// using var w = new CompressedModelWriter(outDir, inputConfig, new JsonObject { ["method"] = "gptq", ["damp"] = 0.1 });
/// foreach (var name in nonExpertNames)   // spans over the memory-mapped input, read at Complete
///     w.AddTensor(new PlainTensor(name, info.DType, info.Shape, () => file.Bytes(info)));
/// foreach (var (prefix, kind) in groups) // E matrices of trits + bf16 (min, max), one at a time
/// {
///     w.BeginExpertGroup(prefix, kind, experts, rows, cols);
///     for (int e = 0; e &lt; experts; e++) w.AddExpert(packedTrits(e), scales(e));
/// }
/// w.Complete();                          // without it, Dispose deletes the temporary files
/// </code>
/// </summary>
public sealed class CompressedModelWriter : IDisposable
{
    private sealed class GroupEntry(string name, int experts, int rows, int cols, long tritOffset)
    {
        public string Name { get; } = name;
        public int Experts { get; } = experts;
        public int Rows { get; } = rows;
        public int Cols { get; } = cols;
        public long TritOffset { get; } = tritOffset;
        public int Added { get; set; }
        /// <summary>The group's n-bit experts (issue 16); null when all are ternary.</summary>
        public NBitPart? NBit { get; set; }
        public long PackedBytes => TritPacking.PackedLength((long)Rows * Cols);
        public long Parameters => (long)Experts * Rows * Cols;
    }

    // A group with n-bit experts (issue 16): types, and from SpoolOffset in the n-bit spool the packed bytes of its
    // NBitExperts experts, then their row scales (f32) and row zeros (u8), [NBitExperts, rows] each.
    // SpoolPackedOffsets: where each expert's packed bytes lie in the spool. Complete may turn 2-bit experts into coded
    // ones (type 5, changing Types) and then sets PackedOffsets, the stored layout, without them.
    private sealed record NBitPart(byte[] Types, long[] SpoolPackedOffsets, long SpoolOffset, int NBitExperts)
    {
        public long[] PackedOffsets { get; } = new long[Types.Length + 1];
    }

    /// <summary>A group after encoding. In the code spool: its codes from CodesOffset, its ternary scales (ScaleCount
    /// bf16, two per row of each ternary expert) from ScalesOffset and, unless the row index is implicit, its row
    /// offsets (I32 [E, rows + 1]) from IndexOffset. Only offsets stay in memory, so what the writer holds does not
    /// grow with the model.</summary>
    private sealed record EncodedGroup(GroupEntry Group, long CodesOffset, long[] ExpertOffsets, long ScalesOffset, long ScaleCount,
        long IndexOffset, DType IndexType, ushort[]? ScaleTable);

    /// <summary>Experts [First, End) of a group stored under one name prefix (the group's own name when whole).</summary>
    private sealed record Piece(EncodedGroup G, int First, int End, string Base)
    {
        public bool Whole => First == 0 && End == G.Group.Experts;
    }

    private readonly string _dir;
    private readonly JsonObject _config;
    private readonly JsonObject _settings;
    private readonly DictionaryChoice _choice;
    private readonly DictionaryStorage _dictionaryStorage;
    private readonly int _formatVersion, _threads;
    private readonly long _shardBytes;
    private readonly RowIndexKind _rowIndex;
    private readonly bool _codeTwoBit;
    private readonly List<PlainTensor> _plain = new();
    private readonly List<GroupEntry> _groups = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly string _tritSpoolPath, _codeSpoolPath, _nbitSpoolPath;
    private readonly List<string> _written = new();
    private FileStream? _tritSpool, _nbitSpool;
    private bool _done;

    /// <summary>The dictionary Complete chose (null before).</summary>
    public CodeDictionary? Dictionary { get; private set; }

    /// <summary>After <see cref="Complete"/>: the four-level dictionary of the coded 2-bit experts, or null when none was coded.</summary>
    public CodeDictionary? FourLevelDictionary { get; private set; }

    /// <summary>After <see cref="Complete"/>: expert bytes (codes, offsets, row index, scales, dictionary) per expert parameter,
    /// as <c>inspect</c> counts them.</summary>
    public double ExpertBitsPerParam { get; private set; }

    /// <summary>After <see cref="Complete"/>: the weight files written (one <c>model.safetensors</c>, or the shards).</summary>
    public IReadOnlyList<string> Files => _written;

    /// <param name="outDir">created if missing</param>
    /// <param name="inputConfig">the input model's config.json (copied, plus <c>quantization_config</c>)</param>
    /// <param name="settings">compression settings for <c>quantization_config</c> (method, damp, calibration...)</param>
    /// <param name="dictionary">a dictionary fitted to the model at <see cref="Complete"/> (default; 3-4% fewer code
    /// bits on real weights), or QMoE's default</param>
    /// <param name="formatVersion">1 (SPEC §5) or 2 (row boundaries implied by the codes, trie-mask dictionary; docs/FORMAT.md)</param>
    /// <param name="threads">encoder threads (≤ 0: all cores)</param>
    /// <param name="storeRowCounts">v2 only: store per-row code counts (cheaper open for huge models) instead of
    /// leaving row boundaries implied by the codes</param>
    /// <param name="shardBytes">≤ 0: one <c>model.safetensors</c>; otherwise shards of at most this many tensor bytes
    /// (a plain tensor or a single expert larger than that gets a shard of its own)</param>
    /// <param name="dictionaryStorage">v2 only: the dictionary as a trie or as the parameters it is regenerated from;
    /// Auto takes the smaller (<see cref="DictionaryRecord.Encode"/>)</param>
    /// <param name="codeTwoBit">v2 only: store each 2-bit expert dict16-coded with a four-level dictionary fitted to the
    /// model's 2-bit experts where that takes fewer bytes than bit-packing (docs/FORMAT.md, "Coded 2-bit experts")</param>
    public CompressedModelWriter(string outDir, JsonObject inputConfig, JsonObject? settings = null,
        DictionaryChoice dictionary = DictionaryChoice.Fitted, int formatVersion = CompressedFormat.LatestVersion, int threads = 0,
        bool storeRowCounts = false, DictionaryStorage dictionaryStorage = DictionaryStorage.Auto, long shardBytes = 0, bool codeTwoBit = true)
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
        _shardBytes = shardBytes;
        _rowIndex = formatVersion == CompressedFormat.Version1 ? RowIndexKind.Offsets : storeRowCounts ? RowIndexKind.Counts : RowIndexKind.Implicit;
        _codeTwoBit = codeTwoBit && formatVersion != CompressedFormat.Version1;
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
        if (experts.Count == 0) throw new QmoeException($"{name}: no experts");
        if (!experts.Any(x => x.NBit != null))
        {
            BeginExpertGroup(prefix, kind, experts.Count, experts[0].Ternary!.Rows, experts[0].Ternary!.Cols);
            foreach (var m in experts) AddExpert(m.Ternary!);
            return;
        }
        if (_formatVersion == CompressedFormat.Version1) throw new QmoeException($"{name}: n-bit experts need format_version 2");
        int rows = experts[0].NBit?.Rows ?? experts[0].Ternary!.Rows, cols = experts[0].NBit?.Cols ?? experts[0].Ternary!.Cols;
        BeginExpertGroup(prefix, kind, experts.Count, rows, cols);
        var g = _groups[^1];
        try { _nbitSpool ??= new FileStream(_nbitSpoolPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20); }
        catch (IOException x) { Fail(x); }
        var nbit = new NBitPart(experts.Select(x => x.Type).ToArray(), new long[experts.Count + 1], _nbitSpool!.Position,
            experts.Count(x => x.NBit != null));
        g.NBit = nbit;
        for (int e = 0; e < experts.Count; e++)
        {
            if (experts[e].NBit is { } p)
            {
                p.Validate($"{name} expert {e}");
                if (p.Rows != rows || p.Cols != cols)
                    throw new QmoeException($"{name}: expert {e} has shape [{p.Rows}, {p.Cols}], expert 0 has [{rows}, {cols}]");
                try { _nbitSpool.Write(p.Packed); }
                catch (IOException x) { Fail(x); }
                nbit.SpoolPackedOffsets[e + 1] = nbit.SpoolPackedOffsets[e] + p.Packed.Length;
                g.Added++;
                continue;
            }
            nbit.SpoolPackedOffsets[e + 1] = nbit.SpoolPackedOffsets[e];
            AddExpert(experts[e].Ternary!);
        }
        // The grids after the packed bytes, in the order the group's tensors store them.
        try
        {
            foreach (var p in experts.Select(x => x.NBit).OfType<PackedNBitMatrix>()) _nbitSpool.Write(MemoryMarshal.AsBytes(p.RowScales.AsSpan()));
            foreach (var p in experts.Select(x => x.NBit).OfType<PackedNBitMatrix>()) _nbitSpool.Write(p.RowZeros);
        }
        catch (IOException x) { Fail(x); }
    }

    /// <summary>Starts a group of <paramref name="experts"/> matrices [rows, cols]; follow with that many <see cref="AddExpert(TernaryMatrix)"/> calls.</summary>
    public void BeginExpertGroup(string prefix, string kind, int experts, int rows, int cols)
    {
        string name = CompressedFormat.Group(prefix, kind);
        if (_groups.Count > 0 && _groups[^1].Added < _groups[^1].Experts)
            throw new InvalidOperationException($"{_groups[^1].Name}: {_groups[^1].Added} of {_groups[^1].Experts} experts added before the next group");
        Claim(name);
        if (experts <= 0) throw new QmoeException($"{name}: no experts");
        if (rows <= 0 || cols <= 0) throw new QmoeException($"{name}: bad matrix shape [{rows}, {cols}]");
        try { _tritSpool ??= new FileStream(_tritSpoolPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20); }
        catch (IOException e) { Fail(e); }
        _groups.Add(new GroupEntry(name, experts, rows, cols, _tritSpool!.Position));
    }

    /// <summary>Adds the next expert of the current group: trits [rows, cols] (one byte each, 0..2) and bf16 (min, max) per row.</summary>
    public void AddExpert(TernaryMatrix m)
    {
        var g = CurrentGroup();
        m.Validate($"{g.Name} expert {g.Added}");
        if (m.Rows != g.Rows || m.Cols != g.Cols)
            throw new QmoeException($"{g.Name}: expert {g.Added} has shape [{m.Rows}, {m.Cols}], the group has [{g.Rows}, {g.Cols}]");
        int bad = m.Trits.AsSpan().IndexOfAnyInRange((byte)3, (byte)255);
        if (bad >= 0) throw new QmoeException($"{g.Name}: expert {g.Added} has trit {m.Trits[bad]} (must be 0, 1 or 2)");
        AddExpert(TritPacking.Pack(m.Trits), m.Scales);
    }

    /// <summary>Adds the next expert of the current group from trits packed 4 per byte (first trit in the low bits,
    /// padding 0) and bf16 (min, max) per row: straight from a layer file, without unpacking.</summary>
    public void AddExpert(ReadOnlySpan<byte> packedTrits, ReadOnlySpan<ushort> scales)
    {
        var g = CurrentGroup();
        long trits = (long)g.Rows * g.Cols;
        if (packedTrits.Length != g.PackedBytes || scales.Length != 2L * g.Rows)
            throw new QmoeException($"{g.Name}: expert {g.Added} has {packedTrits.Length} packed trit bytes and {scales.Length} scales, shape [{g.Rows}, {g.Cols}] needs {g.PackedBytes} and {2L * g.Rows}");
        long bad = TritPacking.FirstInvalid(packedTrits, trits);
        if (bad >= 0) throw new QmoeException($"{g.Name}: expert {g.Added} has an invalid trit at {bad} (fields must be 0, 1 or 2, padding 0)");
        try
        {
            _tritSpool!.Write(packedTrits);
            _tritSpool.Write(MemoryMarshal.AsBytes(scales));
        }
        catch (IOException e) { Fail(e); }
        g.Added++;
    }

    private GroupEntry CurrentGroup()
    {
        if (_done) throw new InvalidOperationException("writer already completed");
        if (_groups.Count == 0 || _groups[^1].Added == _groups[^1].Experts)
            throw new InvalidOperationException("AddExpert without a started group with experts left");
        return _groups[^1];
    }

    private void Fail(IOException e)
    {
        DeleteSpools();
        throw new QmoeException($"{_dir}: write failed: {e.Message}", e);
    }

    /// <summary>The experts of a spooled group, one at a time in a reused buffer (valid until the next item).</summary>
    private IEnumerable<(byte[] Trits, ushort[] Scales)> ReadSpooledExperts(GroupEntry g)
    {
        var fs = _tritSpool!;
        var packed = new byte[g.PackedBytes];
        var trits = new byte[(long)g.Rows * g.Cols];
        var scales = new ushort[2 * g.Rows];
        long position = g.TritOffset;
        for (int e = 0; e < g.Experts; e++)
        {
            if (g.NBit != null && g.NBit.Types[e] != NBitGroup.TernaryType) { yield return (null!, null!); continue; } // n-bit: not in the trit spool
            fs.Position = position; // callers may read other spool regions between items
            fs.ReadExactly(packed);
            fs.ReadExactly(MemoryMarshal.AsBytes(scales.AsSpan()));
            position = fs.Position;
            TritPacking.Unpack(packed, trits);
            yield return (trits, scales);
        }
    }

    /// <summary>Chooses the dictionary, encodes every group and writes the weight file(s) and config.json atomically.</summary>
    public void Complete()
    {
        if (_done) throw new InvalidOperationException("writer already completed");
        if (_groups.Count > 0 && _groups[^1].Added < _groups[^1].Experts)
            throw new InvalidOperationException($"{_groups[^1].Name}: only {_groups[^1].Added} of {_groups[^1].Experts} experts added");
        try
        {
            // With no ternary expert at all (a uniform n-bit model) there is nothing to fit: QMoE's default is stored.
            bool anyTernary = _groups.Any(g => g.NBit == null || g.NBit.Types.Contains(NBitGroup.TernaryType));
            var dict = _choice == DictionaryChoice.Default || !anyTernary ? CodeDictionary.Default : DictionaryFitter.Fit(SampleRows());
            // v2 stores the trie mask, which numbers codes in breadth-first order: encode with that numbering.
            Dictionary = _formatVersion == CompressedFormat.Version1 ? dict : dict.Canonical();
            // The four-level dictionary is only ever stored as its costs, which the reader rebuilds in canonical order.
            var dict4 = _codeTwoBit ? FitFourLevel()?.Canonical() : null;
            var encoded = EncodeGroups(Dictionary, dict4);
            FourLevelDictionary = _groups.Any(g => g.NBit?.Types.Contains(NBitGroup.CodedTwoBitType) == true) ? dict4 : null;
            WriteWeights(encoded, Dictionary);
            WriteConfig(Dictionary);
            _done = true;
        }
        catch (Exception e)
        {
            foreach (var f in _written) AtomicFile.TryDelete(f);
            _written.Clear();
            if (e is IOException io) throw new QmoeException($"{_dir}: write failed: {io.Message}", io);
            throw;
        }
        finally { DeleteSpools(); }
    }

    /// <summary>The rows of the ternary experts of all groups that the dictionary is fitted on
    /// (<see cref="DictionaryFitter.SampleRows"/>), each read from the spool on its own: a trillion-parameter model reads
    /// a few MiB here, not its whole spool.</summary>
    internal IEnumerable<byte[]> SampleRows(long sampleTrits = DictionaryFitter.SampleTrits)
    {
        // Every ternary expert in spool order: its group and its place in the group's part of the spool.
        var experts = _groups.SelectMany(g => Enumerable.Range(0, (int)TernaryExperts(g)).Select(t => (Group: g, Index: t))).ToList();
        var fs = _tritSpool!;
        var bytes = new byte[_groups.Count == 0 ? 0 : _groups.Max(g => g.Cols) / 4 + 2];
        foreach (var (m, r) in DictionaryFitter.SampleRows(experts.Select(x => (x.Group.Rows, x.Group.Cols)).ToList(), sampleTrits))
        {
            var (g, t) = experts[m];
            long trit = (long)r * g.Cols; // the row's first trit in the expert
            fs.Position = g.TritOffset + t * (g.PackedBytes + 4L * g.Rows) + trit / 4; // each expert: packed trits, then (min, max) per row
            fs.ReadExactly(bytes, 0, (int)((trit % 4 + g.Cols + 3) / 4));
            var row = new byte[g.Cols];
            TritPacking.Unpack(bytes, row, first: trit % 4);
            yield return row;
        }
    }

    /// <summary>2-bit expert <paramref name="e"/>'s rows [rows, cols] as symbols (code − zero) mod 4, read from the n-bit
    /// spool: symbol 0 is the grid's zero level (the most frequent), and the row's zero point gives the code back.</summary>
    private byte[] TwoBitSymbols(GroupEntry g, int e, int firstRow = 0, int rowCount = -1)
    {
        var nb = g.NBit!;
        if (rowCount < 0) rowCount = g.Rows;
        int ordinal = 0;
        for (int k = 0; k < e; k++) if (nb.Types[k] != NBitGroup.TernaryType) ordinal++;
        long rowBytes = PackedNBitMatrix.RowBytesOf(2, g.Cols);
        var packed = new byte[rowCount * rowBytes];
        var zeros = new byte[rowCount];
        _nbitSpool!.Flush();
        _nbitSpool.Position = nb.SpoolOffset + nb.SpoolPackedOffsets[e] + firstRow * rowBytes;
        _nbitSpool.ReadExactly(packed);
        _nbitSpool.Position = nb.SpoolOffset + nb.SpoolPackedOffsets[^1] + 4L * nb.NBitExperts * g.Rows + (long)ordinal * g.Rows + firstRow;
        _nbitSpool.ReadExactly(zeros);
        return PackedNBitMatrix.ZeroRelativeSymbols(packed, zeros, 2, g.Cols);
    }

    /// <summary>The four-level dictionary for the model's 2-bit experts, built from the pair statistics of a sample of their
    /// rows (<see cref="DictionaryFitter.SampleRows"/>); null when there are none.</summary>
    private CodeDictionary? FitFourLevel()
    {
        var experts = _groups.Where(g => g.NBit != null)
            .SelectMany(g => Enumerable.Range(0, g.Experts).Where(e => g.NBit!.Types[e] == 2).Select(e => (Group: g, Expert: e))).ToList();
        if (experts.Count == 0) return null;
        return DictionaryFitter.FitFourLevel(DictionaryFitter.SampleRows(experts.Select(x => (x.Group.Rows, x.Group.Cols)).ToList())
            .Select(x => TwoBitSymbols(experts[x.Matrix].Group, experts[x.Matrix].Expert, x.Row, 1)));
    }

    private static long TernaryExperts(GroupEntry g) => g.NBit == null ? g.Experts : g.NBit.Types.Count(t => t == NBitGroup.TernaryType);

    /// <summary>Encodes each group expert by expert into the code spool; a 2-bit expert too, with <paramref name="dict4"/>,
    /// where its codes take fewer bytes than its packed rows (it becomes a coded 2-bit expert).</summary>
    private List<EncodedGroup> EncodeGroups(CodeDictionary dict, CodeDictionary? dict4)
    {
        var result = new List<EncodedGroup>();
        using var spool = new FileStream(_codeSpoolPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        foreach (var g in _groups)
        {
            long codesOffset = spool.Position;
            var expertOffsets = new long[g.Experts + 1];
            var rowOffsets = _rowIndex == RowIndexKind.Implicit ? null : new int[(long)g.Experts * (g.Rows + 1)]; // n-bit experts: all 0
            // Ternary (min, max) per row of the ternary experts only: an n-bit expert stores none (docs/FORMAT.md).
            var scales = new ushort[2L * TernaryExperts(g) * g.Rows];
            int e = 0, t = 0;
            foreach (var (trits, s) in ReadSpooledExperts(g))
            {
                if (trits == null) // n-bit expert: no codes, rows all empty, (0, 0) ternary scales; unless coded below
                {
                    expertOffsets[e + 1] = expertOffsets[e];
                    if (dict4 != null && g.NBit!.Types[e] == 2)
                    {
                        var coded = TernaryEncoder.Encode(TwoBitSymbols(g, e), g.Rows, g.Cols, dict4, _threads);
                        if (2L * coded.Codes.Length < g.NBit.SpoolPackedOffsets[e + 1] - g.NBit.SpoolPackedOffsets[e])
                        {
                            g.NBit.Types[e] = NBitGroup.CodedTwoBitType;
                            spool.Write(MemoryMarshal.AsBytes(coded.Codes.AsSpan()));
                            expertOffsets[e + 1] = expertOffsets[e] + coded.Codes.Length;
                            if (rowOffsets != null) coded.RowOffsets.CopyTo(rowOffsets.AsSpan((int)((long)e * (g.Rows + 1))));
                        }
                    }
                    e++;
                    continue;
                }
                var enc = TernaryEncoder.Encode(trits, g.Rows, g.Cols, dict, _threads);
                spool.Write(MemoryMarshal.AsBytes(enc.Codes.AsSpan()));
                expertOffsets[e + 1] = expertOffsets[e] + enc.Codes.Length;
                if (rowOffsets != null) enc.RowOffsets.CopyTo(rowOffsets.AsSpan((int)((long)e * (g.Rows + 1))));
                s.CopyTo(scales, 2L * t * g.Rows);
                e++; t++;
            }
            if (g.NBit is { } nb) // the stored packed layout: coded experts have no packed bytes
                for (int k = 0; k < g.Experts; k++)
                    nb.PackedOffsets[k + 1] = nb.PackedOffsets[k] + (nb.Types[k] == NBitGroup.CodedTwoBitType ? 0 : nb.SpoolPackedOffsets[k + 1] - nb.SpoolPackedOffsets[k]);
            var table = _formatVersion == CompressedFormat.Version1 ? null : ScaleCoding.Table(scales);
            if (table is { Length: 0 }) table = [0]; // no ternary expert: a one-entry table, no fields
            long scalesOffset = spool.Position;
            spool.Write(MemoryMarshal.AsBytes(scales.AsSpan()));
            long indexOffset = spool.Position;
            if (rowOffsets != null) spool.Write(MemoryMarshal.AsBytes(rowOffsets.AsSpan()));
            result.Add(new EncodedGroup(g, codesOffset, expertOffsets, scalesOffset, scales.LongLength, indexOffset,
                RowIndex.StoredType(rowOffsets, g.Rows, _rowIndex), table));
        }
        spool.Flush();
        return result;
    }

    // ---- layout: which tensors go into which file ----

    /// <summary>Tensor names and stored sizes of a piece, in file order.</summary>
    private List<(string Name, DType DType, long[] Shape)> PieceTensors(Piece p)
    {
        var g = p.G.Group;
        long experts = p.End - p.First, rows = g.Rows;
        var list = new List<(string, DType, long[])>
        {
            (CompressedFormat.Codes(p.Base), DType.U16, [p.G.ExpertOffsets[p.End] - p.G.ExpertOffsets[p.First]]),
            (CompressedFormat.ExpertOffsets(p.Base), DType.I64, [experts + 1]),
        };
        if (_rowIndex == RowIndexKind.Offsets) list.Add((CompressedFormat.RowOffsets(p.Base), DType.I32, [experts, rows + 1]));
        else if (_rowIndex == RowIndexKind.Counts) list.Add((CompressedFormat.RowCounts(p.Base), p.G.IndexType, [experts, rows]));
        if (_formatVersion == CompressedFormat.Version1) list.Add((CompressedFormat.Scales(p.Base), DType.BF16, [experts, rows, 2]));
        else
        {
            list.Add((CompressedFormat.ScaleTable(p.Base), DType.U16, [p.G.ScaleTable!.Length]));
            list.Add((CompressedFormat.ScaleFields(p.Base), DType.U8, [ScaleCoding.FieldBytes(StoredScales(p.G, p.First, p.End), p.G.ScaleTable.Length)]));
        }
        if (g.NBit is { } nb)
        {
            if (!p.Whole) throw new QmoeException($"{g.Name}: n-bit experts cannot be split over shards (raise --shard-gb)");
            list.Add((NBitGroup.ExpertTypes(p.Base), DType.U8, [experts]));
            list.Add((NBitGroup.Packed(p.Base), DType.U8, [nb.PackedOffsets[^1]]));
            list.Add((NBitGroup.PackedOffsets(p.Base), DType.I64, [experts + 1]));
            list.Add((NBitGroup.RowScales(p.Base), DType.F32, [nb.NBitExperts, rows]));
            list.Add((NBitGroup.RowZeros(p.Base), DType.U8, [nb.NBitExperts, rows]));
        }
        return list;
    }

    /// <summary>Ternary scales stored for experts [first, end): two per row of each ternary expert (n-bit groups are whole).</summary>
    private static long StoredScales(EncodedGroup g, int first, int end) =>
        g.Group.NBit != null ? g.ScaleCount : 2L * (end - first) * g.Group.Rows;

    private long PieceBytes(EncodedGroup g, int first, int end)
    {
        long experts = end - first, rows = g.Group.Rows;
        long bytes = 2 * (g.ExpertOffsets[end] - g.ExpertOffsets[first]) + 8 * (experts + 1)
                   + RowIndex.StoredBytes(experts, g.Group.Rows, _rowIndex, g.IndexType);
        if (g.Group.NBit is { } nb)
            bytes += experts + nb.PackedOffsets[^1] + 8 * (experts + 1) + 5L * nb.NBitExperts * rows;
        return bytes + (g.ScaleTable == null ? 4 * experts * rows : 2L * g.ScaleTable.Length + ScaleCoding.FieldBytes(StoredScales(g, first, end), g.ScaleTable.Length));
    }

    /// <summary>
    /// Greedy assignment of plain tensors, group pieces and the dictionary (last) to files of at most the shard size:
    /// a group that does not fit in the current shard's room is cut at the last expert that does.
    /// </summary>
    private List<List<object>> Layout(List<EncodedGroup> groups, StoredDictionary dictItem, StoredDictionary? dict4Item)
    {
        var shards = new List<List<object>> { new() };
        long room = _shardBytes > 0 ? _shardBytes : long.MaxValue;
        void Place(object item, long bytes)
        {
            if (shards[^1].Count > 0 && bytes > room) { shards.Add(new()); room = _shardBytes; }
            shards[^1].Add(item);
            room -= bytes;
        }
        foreach (var t in _plain) Place(t, t.Shape.Aggregate(1L, (a, b) => a * b) * t.DType.Size());
        foreach (var g in groups)
        {
            int E = g.Group.Experts;
            for (int a = 0; a < E;)
            {
                int b = E;
                if (PieceBytes(g, a, E) > room)
                {
                    int lo = a, hi = E; // largest b in (a, E] with PieceBytes(a, b) ≤ room; lo = a means none
                    while (lo < hi)
                    {
                        int mid = lo + (hi - lo + 1) / 2;
                        if (PieceBytes(g, a, mid) <= room) lo = mid; else hi = mid - 1;
                    }
                    if (lo == a && shards[^1].Count > 0) { shards.Add(new()); room = _shardBytes; continue; }
                    b = Math.Max(lo, a + 1);
                    if (g.Group.NBit != null && b < E)
                        throw new QmoeException($"{g.Group.Name}: a group with n-bit experts does not fit in one shard of {_shardBytes} bytes; n-bit experts cannot be split over shards (raise --shard-gb)");
                }
                var piece = new Piece(g, a, b, a == 0 && b == E ? g.Group.Name : CompressedFormat.Range(g.Group.Name, a, b));
                Place(piece, PieceBytes(g, a, b));
                a = b;
            }
        }
        Place(dictItem, dictItem.Bytes.Length);
        if (dict4Item != null) Place(dict4Item, dict4Item.Bytes.Length);
        return shards;
    }

    private void WriteWeights(List<EncodedGroup> groups, CodeDictionary dict)
    {
        long payload = _plain.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b) * t.DType.Size())
            + groups.Sum(g => PieceBytes(g, 0, g.Group.Experts));
        var storedDict = DictionaryRecord.Encode(dict, _formatVersion, _dictionaryStorage, payload);
        var stored4 = FourLevelDictionary == null ? null : DictionaryRecord.EncodeFourLevel(FourLevelDictionary);
        long dictBytes = storedDict.Bytes.Length + (stored4?.Bytes.Length ?? 0);
        var shards = Layout(groups, storedDict, stored4);
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long totalBytes = 0, expertBytes = 0;
        using var spool = new FileStream(_codeSpoolPath, FileMode.Open, FileAccess.Read, FileShare.None, 1 << 20);
        for (int s = 0; s < shards.Count; s++)
        {
            string file = shards.Count == 1 ? CompressedFormat.WeightsFile : CompressedFormat.ShardFile(s + 1, shards.Count);
            var metadata = new Dictionary<string, string>
            {
                ["format"] = "pt",
                [CompressedFormat.FormatVersionKey] = _formatVersion.ToString(),
            };
            foreach (var p in shards[s].OfType<Piece>())
            {
                var g = p.G.Group;
                metadata[CompressedFormat.ShapeKeyPrefix + g.Name] = $"{g.Experts},{g.Rows},{g.Cols}";
                if (!p.Whole) metadata[CompressedFormat.RangeKeyPrefix + g.Name] = $"{p.First},{p.End}";
            }
            string path = Path.Combine(_dir, file);
            using var w = new SafeTensorsWriter(path, metadata);
            foreach (var item in shards[s])
            {
                var declared = item switch
                {
                    PlainTensor t => [(t.Name, t.DType, t.Shape)],
                    Piece p => PieceTensors(p),
                    StoredDictionary d => new List<(string, DType, long[])> { (d.Name, d.DType, d.Shape) },
                    _ => throw new InvalidOperationException(),
                };
                foreach (var (name, dtype, shape) in declared)
                {
                    w.Declare(name, dtype, shape);
                    weightMap[name] = file;
                    long bytes = shape.Aggregate(1L, (a, b) => a * b) * dtype.Size();
                    totalBytes += bytes;
                    if (item is Piece) expertBytes += bytes;
                }
            }
            foreach (var item in shards[s])
                switch (item)
                {
                    case PlainTensor t: WritePlain(w, t); break;
                    case Piece p: WritePiece(w, p, spool); break;
                    case StoredDictionary d: w.Write(d.Bytes); break;
                }
            w.Complete();
            _written.Add(path);
        }
        if (shards.Count > 1)
        {
            var map = new JsonObject();
            foreach (var (name, file) in weightMap) map[name] = file;
            var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalBytes }, ["weight_map"] = map };
            string indexPath = Path.Combine(_dir, CompressedFormat.IndexFile);
            AtomicFile.WriteAllText(indexPath, index.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            _written.Add(indexPath);
        }
        ExpertBitsPerParam = 8.0 * (expertBytes + dictBytes) / groups.Sum(g => g.Group.Parameters);
    }

    private static void WritePlain(SafeTensorsWriter w, PlainTensor t)
    {
        var bytes = t.Bytes();
        long expected = t.Shape.Aggregate(1L, (a, b) => a * b) * t.DType.Size();
        if (bytes.Length != expected) throw new QmoeException($"{t.Name}: {bytes.Length} bytes for shape [{string.Join(", ", t.Shape)}] × {t.DType}");
        w.Write(bytes);
    }

    /// <summary>Streams a piece: its codes from the spool, expert offsets relative to its first code, row index, scales.</summary>
    private void WritePiece(SafeTensorsWriter w, Piece p, FileStream spool)
    {
        var g = p.G;
        long first = g.ExpertOffsets[p.First];
        spool.Position = g.CodesOffset + 2 * first;
        CopySpool(spool, 2 * (g.ExpertOffsets[p.End] - first), w);
        var offsets = new long[p.End - p.First + 1];
        for (int e = p.First; e <= p.End; e++) offsets[e - p.First] = g.ExpertOffsets[e] - first;
        w.Write<long>(offsets);
        if (_rowIndex != RowIndexKind.Implicit)
        {
            var expert = new int[g.Group.Rows + 1];
            spool.Position = g.IndexOffset + 4L * p.First * expert.Length;
            for (int e = p.First; e < p.End; e++)
            {
                spool.ReadExactly(MemoryMarshal.AsBytes(expert.AsSpan()));
                w.Write(RowIndex.ExpertBytes(expert, _rowIndex, g.IndexType));
            }
        }
        // The piece's scales: all of an n-bit group's (such groups are whole), else two per row of experts [First, End).
        int count = checked((int)StoredScales(g, p.First, p.End));
        long skip = g.Group.NBit != null ? 0 : 2L * p.First * g.Group.Rows;
        var scales = ArrayPool<ushort>.Shared.Rent(Math.Max(1, count));
        try
        {
            spool.Position = g.ScalesOffset + 2 * skip;
            var span = scales.AsSpan(0, count);
            spool.ReadExactly(MemoryMarshal.AsBytes(span));
            if (g.ScaleTable == null) w.Write<ushort>(span);
            else
            {
                w.Write<ushort>(g.ScaleTable);
                w.Write(ScaleCoding.Encode(span, g.ScaleTable));
            }
        }
        finally { ArrayPool<ushort>.Shared.Return(scales); }
        if (g.Group.NBit is { } nb)
        {
            w.Write<byte>(nb.Types);
            _nbitSpool!.Flush();
            for (int e = 0; e < g.Group.Experts; e++) // the packed experts' bytes (a coded one's are in the codes)
                if (nb.PackedOffsets[e + 1] > nb.PackedOffsets[e])
                {
                    _nbitSpool.Position = nb.SpoolOffset + nb.SpoolPackedOffsets[e];
                    CopySpool(_nbitSpool, nb.PackedOffsets[e + 1] - nb.PackedOffsets[e], w);
                }
            w.Write<long>(nb.PackedOffsets);
            _nbitSpool.Position = nb.SpoolOffset + nb.SpoolPackedOffsets[^1];
            CopySpool(_nbitSpool, 5L * nb.NBitExperts * g.Group.Rows, w); // row scales (f32), then row zeros (u8)
        }
    }

    /// <summary>Copies <paramref name="bytes"/> from the spool's position into the open tensor, 1 MiB at a time.</summary>
    private static void CopySpool(FileStream spool, long bytes, SafeTensorsWriter w)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (long left = bytes; left > 0;)
            {
                int n = (int)Math.Min(left, buffer.Length);
                spool.ReadExactly(buffer, 0, n);
                w.Write(buffer.AsSpan(0, n));
                left -= n;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private void WriteConfig(CodeDictionary dict)
    {
        var q = new JsonObject();
        foreach (var (k, v) in _settings) q[k] = v?.DeepClone();
        // A quantized input (e.g. an FP8 checkpoint) keeps its own quantization_config for the tensors copied as they were.
        if (_config["quantization_config"] is JsonObject input) q["base_quantization_config"] = input.DeepClone();
        q["quant_method"] = CompressedFormat.QuantMethod;
        q["format_version"] = _formatVersion;
        var types = _groups.SelectMany(g => g.NBit?.Types ?? [NBitGroup.TernaryType]).Select(t => (byte)NBitGroup.GridBits(t)).Distinct().ToList();
        q["bits"] = types.Count > 1 ? "mixed" : types.Count == 0 || types[0] == NBitGroup.TernaryType ? "ternary" : types[0].ToString();
        q["codebook"] = CompressedFormat.Codebook;
        q["dictionary"] = dict.Source;
        _config["quantization_config"] = q;
        string path = Path.Combine(_dir, CompressedFormat.ConfigFile);
        AtomicFile.WriteAllText(path, _config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        _written.Add(path);
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
