using System.Text.Json;
using Qmoe.Codec;
using Qmoe.Quantization;

namespace Qmoe.Compression;

/// <summary>One candidate type of one expert matrix: the measured error proxy and the bytes it would store.</summary>
/// <param name="Type">"ternary", "2", "3" or "4" (<see cref="QuantTypeInfo.Name"/>).</param>
/// <param name="Error">g² ‖Δy‖² summed over the expert's calibration tokens, Δy the change of the expert's output (model
/// width) when this matrix alone is replaced by its GPTQ quantization to this type, g the token's gate weight (the
/// change of the layer's output is g Δy).</param>
/// <param name="Bytes">What the matrix adds to the compressed file (<see cref="AllocationProbe.CandidateBytes"/>).</param>
public sealed record AllocationCandidate(string Type, double Error, long Bytes);

/// <summary>The candidates of one expert matrix (its checkpoint tensor name).</summary>
public sealed record AllocationMatrix(string Name, string Group, int Expert, long Parameters, int Tokens, IReadOnlyList<AllocationCandidate> Candidates);

/// <summary>
/// The measurements <c>compress --target-bits</c> allocates from (issue 16): for every expert matrix and every type in
/// <see cref="Precision.Candidates"/>, GPTQ on that matrix's Hessian and the resulting change of the expert's output on its
/// calibration tokens, plus the stored size. Collected by a probe pass (<see cref="CompressionPipeline.RunToTarget"/>);
/// saved as JSON so that several budgets reuse one probe. <see cref="Fingerprint"/> ties it to the model,
/// calibration data and method.
/// </summary>
public sealed class AllocationProbe
{
    public string Fingerprint { get; set; } = "";
    /// <summary>The type the probe pass propagated (later layers' inputs come from experts quantized to it).</summary>
    public string PropagatedType { get; set; } = "";
    /// <summary>Bytes that do not depend on the allocation: per group its extra offset entries and scale table, and the dictionary record.</summary>
    public long FixedBytes { get; set; }
    public List<AllocationMatrix> Matrices { get; set; } = new();

    /// <summary>The dictionary the ternary candidates' code bytes were counted with (<see cref="RefineCodeBytes"/>).</summary>
    public string Dictionary { get; set; } = CodeDictionary.Default.Source;

    public long Parameters => Matrices.Sum(m => m.Parameters);

    private readonly object _lock = new();
    // Ternary candidates' trits and 2-bit candidates' zero-relative symbols (both packed 4 per byte) until
    // RefineCodeBytes: 0.25 bytes per expert parameter each.
    private readonly Dictionary<(string Matrix, string Candidate), (byte[] Packed, int Rows, int Cols)> _trits = new();
    private readonly Dictionary<string, (byte[] Packed, int Rows, int Cols)> _twoBit = new();

    /// <param name="m">the matrix's record: its candidates' errors and bytes</param>
    /// <param name="coded">the matrix's ternary candidates by name, and its 2-bit one (their symbols are kept for
    /// <see cref="RefineCodeBytes"/>)</param>
    public void Add(AllocationMatrix m, IEnumerable<(string Candidate, QuantizedWeight Q)> coded)
    {
        lock (_lock)
        {
            Matrices.Add(m);
            foreach (var (c, q) in coded)
                if (q.Type == QuantType.Ternary) _trits[(m.Name, c)] = (TritPacking.Pack(q.Codes), q.Rows, q.Cols);
                else if (q.Type == QuantType.Int2 && PackedNBitMatrix.FromQuantized(q) is var p) // what the writer codes
                    _twoBit[m.Name] = (TritPacking.Pack(PackedNBitMatrix.ZeroRelativeSymbols(p.Packed, p.RowZeros, 2, q.Cols)), q.Rows, q.Cols);
        }
    }

    /// <summary>
    /// Recounts the ternary candidates' code bytes with the dictionary the writer would fit to them (the same fitting,
    /// on rows sampled the same way), instead of QMoE's default: the writer's choice typically takes a few percent
    /// fewer codes, which the allocation would otherwise leave unspent; and the 2-bit candidates as the writer stores them
    /// (<see cref="RefineTwoBitBytes"/>). Then drops the kept symbols.
    /// </summary>
    /// <param name="codedTwoBit">also price the 2-bit candidates as the writer codes them (unless <c>--pack-2bit</c>)</param>
    public void RefineCodeBytes(bool codedTwoBit = true)
    {
        if (codedTwoBit) RefineTwoBitBytes();
        _twoBit.Clear();
        if (_trits.Count == 0) return;
        var matrices = _trits.Values.ToList();
        var sample = DictionaryFitter.SampleRows(matrices.Select(t => (t.Rows, t.Cols)).ToList()).Select(x =>
        {
            var (packed, _, cols) = matrices[x.Matrix];
            var row = new byte[cols];
            TritPacking.Unpack(packed, row, first: (long)x.Row * cols);
            return row;
        });
        var dict = DictionaryFitter.Fit(sample);
        Dictionary = dict.Source;
        AllocationCandidate Recount(string matrix, AllocationCandidate c)
        {
            if (!_trits.TryGetValue((matrix, c.Type), out var t)) return c;
            var trits = TritPacking.Unpack(t.Packed, (long)t.Rows * t.Cols);
            long codes = TernaryEncoder.Encode(trits, t.Rows, t.Cols, dict, threads: 1).Codes.Length;
            long defaultCodes = TernaryEncoder.Encode(trits, t.Rows, t.Cols, CodeDictionary.Default, threads: 1).Codes.Length;
            return c with { Bytes = c.Bytes - 2 * (defaultCodes - codes) };
        }
        for (int i = 0; i < Matrices.Count; i++)
            Matrices[i] = Matrices[i] with { Candidates = Matrices[i].Candidates.Select(c => Recount(Matrices[i].Name, c)).ToList() };
        _trits.Clear();
    }

    /// <summary>
    /// Recounts the 2-bit candidates as the writer stores them: with a four-level dictionary fitted to their rows (the
    /// writer's fitting, on rows sampled the same way), each dict16-coded where that takes fewer bytes than its packed
    /// rows (typically 1.3–1.6 code bits per weight against 2).
    /// </summary>
    private void RefineTwoBitBytes()
    {
        if (_twoBit.Count == 0) return;
        var matrices = _twoBit.Values.ToList();
        var dict4 = DictionaryFitter.FitFourLevel(DictionaryFitter.SampleRows(matrices.Select(t => (t.Rows, t.Cols)).ToList()).Select(x =>
        {
            var (packed, _, cols) = matrices[x.Matrix];
            var row = new byte[cols];
            TritPacking.Unpack(packed, row, first: (long)x.Row * cols);
            return row;
        }));
        string twoBit = QuantTypeInfo.Of(QuantType.Int2).Name;
        AllocationCandidate Recount(string matrix, AllocationCandidate c)
        {
            if (c.Type != twoBit || !_twoBit.TryGetValue(matrix, out var t)) return c;
            var symbols = TritPacking.Unpack(t.Packed, (long)t.Rows * t.Cols);
            long codes = TernaryEncoder.Encode(symbols, t.Rows, t.Cols, dict4, threads: 1).Codes.Length;
            long packedBytes = t.Rows * PackedNBitMatrix.RowBytesOf(2, t.Cols);
            return c with { Bytes = c.Bytes - Math.Max(0, packedBytes - 2 * codes) };
        }
        for (int i = 0; i < Matrices.Count; i++)
            Matrices[i] = Matrices[i] with { Candidates = Matrices[i].Candidates.Select(c => Recount(Matrices[i].Name, c)).ToList() };
    }

    /// <summary>The four-level dictionary's record (<c>qmoe.dictionary4_costs</c>, I64 [17]), stored when any 2-bit expert is coded.</summary>
    public const long FourLevelDictionaryBytes = 8 * DictionaryRecord.FourLevelElements;

    /// <summary>Per group: the codes' and packed offsets' extra entry (8 + 8), a scale table of up to 8 patterns (16).</summary>
    public const long GroupFixedBytes = 32;
    /// <summary>The dictionary record (<c>qmoe.dictionary_costs</c>, I64 [10]).</summary>
    public const long DictionaryBytes = 80;

    /// <summary>
    /// Bytes a quantized matrix adds to a compressed file, every tensor counted as <c>inspect</c> counts it: its
    /// offset entries (codes and packed, 8 each) and type byte; n-bit: the packed rows plus f32 scale and u8 zero per
    /// row (exact); ternary: its dict16 codes under QMoE's default dictionary (the writer's fitted dictionary is
    /// chosen as the one with the fewest codes on a sample, the default among the candidates, so it is rarely more)
    /// plus two scale fields per row at the width of a table of max(4, the matrix's own patterns) entries.
    /// </summary>
    public static long CandidateBytes(QuantizedWeight q)
    {
        const long entries = 8 + 8 + 1;
        if (q.Type != QuantType.Ternary)
            return entries + q.Rows * (PackedNBitMatrix.RowBytesOf(PackedNBitMatrix.BitsOf(q.Type), q.Cols) + sizeof(float) + 1);
        var codes = TernaryEncoder.Encode(q.Codes, q.Rows, q.Cols, CodeDictionary.Default, threads: 1).Codes.Length;
        int patterns = Math.Max(4, ScaleCoding.Table(q.TernaryScales()).Length);
        return entries + 2L * codes + ScaleCoding.FieldBytes(2L * q.Rows, patterns);
    }

    public void Save(string path) => IO.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(this, ReportJson.Options));

    public static AllocationProbe Load(string path)
    {
        AllocationProbe? p;
        try { p = JsonSerializer.Deserialize<AllocationProbe>(File.ReadAllText(path), ReportJson.Options); }
        catch (JsonException e) { throw new QmoeException($"{path}: not an allocation probe ({e.Message})"); }
        if (p == null || p.Matrices.Count == 0) throw new QmoeException($"{path}: allocation probe has no matrices");
        foreach (var m in p.Matrices)
            if (m.Candidates == null || m.Candidates.Count == 0 || m.Candidates.Any(c => c.Bytes <= 0 || !double.IsFinite(c.Error) || c.Error < 0))
                throw new QmoeException($"{path}: matrix '{m.Name}' has missing or invalid candidates");
        return p;
    }
}
