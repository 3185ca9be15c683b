using System.Diagnostics;
using Qmoe.IO;
using Qmoe.Models.Moe;
using Qmoe.Quantization;

namespace Qmoe.Compression;

/// <summary>
/// Quantizes all experts of one sparse layer from their list buffers, a group of experts at a time:
/// per stage, build each expert's Hessian from its stage inputs, fetch the group's weights from the
/// memory-mapped checkpoint, run batched GPTQ (or RTN), and keep the dequantized weights (in budgeted
/// activation buffers) for recomputing the layer's outputs. The group's results go to the layer file
/// expert by expert; weights and Hessians are released when the group is done.
/// </summary>
public sealed class ExpertLayerQuantizer
{
    /// <summary>The dequantized experts of a finished layer (one buffer per matrix kind, [E·rows, cols]).</summary>
    public sealed class QuantizedLayer : IDisposable
    {
        public required Dictionary<string, ActivationBuffer> Dequantized { get; init; }
        public required IExpertLayout Layout { get; init; }
        public required int Experts { get; init; }

        /// <summary>The layer's experts on the dequantized weights; a spilled expert matrix leaves the resident set after each use.</summary>
        public IExperts CreateExperts() => Layout.CreateExperts(Experts,
            (e, kind) => new SpilledWeight(Dequantized[kind], (long)e * Layout.Shape(kind).Rows, Layout.Shape(kind).Rows));

        public void Dispose() { foreach (var b in Dequantized.Values) b.Dispose(); }
    }

    private readonly CompressionOptions _options;
    private readonly MemoryBudget _budget;
    private readonly Action<string>? _progress;
    // --proxy next-layer: the current sparse layer's G (ResidualReaders; d² floats, so only one layer's is kept).
    private (string Prefix, float[] G)? _readers;

    public ExpertLayerQuantizer(CompressionOptions options, MemoryBudget budget, Action<string>? progress)
    {
        _options = options; _budget = budget; _progress = progress;
    }

    // The run's cancellation, also checked per token chunk: one Mixtral-8x7B expert takes minutes.
    private CancellationToken _ct;

    public (QuantizedLayer Layer, LayerReport Report) Run(string prefix, IExpertLayout layout, TensorStore store,
        ExpertListBuffers lists, LayerResultFile output, CancellationToken ct)
    {
        _ct = ct;
        var sw = Stopwatch.StartNew();
        int E = lists.Experts;
        var caps = lists.Cap(_options.TokenCapFactor)
            .Select(c => new CapRecord(layout.ExpertName(prefix, c.Expert), c.Tokens, c.Cap)).ToList();
        var deq = layout.Kinds.ToDictionary(k => k, k =>
            new ActivationBuffer((long)E * layout.Shape(k).Rows, layout.Shape(k).Cols, _budget, $"deq-{k}",
                _options.AllTernary ? DType.BF16 : DType.F32)); // ternary levels are bf16: exact at half the memory
        var layer = new QuantizedLayer { Dequantized = deq, Layout = layout, Experts = E };
        try
        {
            var fallbacks = new List<FallbackRecord>();
            // Per kind and expert: output error and its reference (‖(W − Q) Xᵀ‖², ‖W Xᵀ‖²), and zero count.
            var err = layout.Kinds.ToDictionary(k => k, _ => new (double num, double den)[E]);
            var zeros = layout.Kinds.ToDictionary(k => k, _ => new long[E]);
            var tokens = new int[E];
            int group = GroupSize(layout, lists);
            for (int g0 = 0; g0 < E; g0 += group)
            {
                ct.ThrowIfCancellationRequested();
                int g1 = Math.Min(E, g0 + group);
                // ETA from the experts done so far in this layer (groups are equal-sized; token counts differ little after the cap).
                string eta = g0 == 0 ? "" : $", {sw.Elapsed.TotalSeconds / g0:F1} s/expert, layer ETA {TimeSpan.FromSeconds(sw.Elapsed.TotalSeconds / g0 * (E - g0)):hh\\:mm\\:ss}";
                _progress?.Invoke($"{prefix}: experts {g0}–{g1 - 1} of {E}{eta}");
                QuantizeAndStoreGroup(prefix, layout, store, lists, g0, g1, tokens, fallbacks, err, deq, zeros, output);
                // The group's weights, Hessians and inputs are garbage now: free them before the next group allocates its own.
                _budget.TrimResident();
            }
            static double Ratio(double num, double den) => den > 0 ? num / den : 0;
            var stats = layout.Kinds.Select(k =>
            {
                long size = (long)layout.Shape(k).Rows * layout.Shape(k).Cols;
                return new LayerStatistics
                {
                    Name = $"{prefix}.experts.{k}",
                    Experts = E,
                    Rows = layout.Shape(k).Rows,
                    Cols = layout.Shape(k).Cols,
                    TokensPerExpert = tokens,
                    RelativeError = Ratio(err[k].Sum(x => x.num), err[k].Sum(x => x.den)),
                    ZeroFraction = (double)zeros[k].Sum() / (E * size),
                    ExpertRelativeErrors = [.. err[k].Select(x => Ratio(x.num, x.den))],
                    ExpertZeroFractions = [.. zeros[k].Select(z => (double)z / size)],
                };
            }).ToList();
            return (layer, new LayerReport(prefix, stats, fallbacks, caps, sw.Elapsed.TotalSeconds));
        }
        catch
        {
            layer.Dispose();
            throw;
        }
    }

    /// <summary>Calibration tokens per step when an expert's inputs stream through its Hessian and error (a multiple of
    /// <see cref="HessianAccumulator.ChunkTokens"/>, so the Hessian is bitwise that of one pass over all tokens).</summary>
    public const int TokenChunk = HessianAccumulator.ChunkTokens;

    /// <summary>
    /// Bytes one expert needs at its peak, whatever its token count (inputs stream in chunks of <see cref="TokenChunk"/>),
    /// counting every array live at each moment: the finished earlier-stage matrices (f32 dequantized + u8 codes: 5 bytes
    /// per weight) plus the largest of (a) building a stage's Hessian: H, whose span also takes each chunk's f32
    /// product, and the packed double accumulator (8 bytes per H entry), and one token chunk's inputs; (b) GPTQ on one
    /// of the stage's matrices: H (4 bytes per entry), W as fetched (4 per weight) and <see cref="Gptq.WorkingBytes"/>
    /// (Hinv: 4 per entry; W's working copy, Q and codes: 9 per weight; block buffers); (c) that matrix's output error:
    /// H, W, its Q and codes and their difference (13 per weight) and one token chunk; each plus the stage's matrices
    /// already done. GPTQ's garbage is collected before (c), the accumulators' before (b).
    /// </summary>
    public static long WorkingSetBytes(IExpertLayout layout, int blockSize = 128)
    {
        long held = 0, peak = 0;
        foreach (var kinds in layout.Stages)
        {
            long cols = layout.Shape(kinds[0]).Cols, h = 4 * cols * cols;
            long chunk = (long)TokenChunk * (layout.Dim + 2 * cols + layout.Kinds.Max(k => (long)layout.Shape(k).Rows)) * 4;
            peak = Math.Max(peak, held + h + 8 * (cols * (cols + 1) / 2) + chunk);
            long doneInStage = 0;
            foreach (var kind in kinds)
            {
                var (rows, c) = layout.Shape(kind);
                long weights = (long)rows * c;
                peak = Math.Max(peak, held + doneInStage + h + 4 * weights + Gptq.WorkingBytes(rows, c, blockSize));
                peak = Math.Max(peak, held + doneInStage + h + 13 * weights + chunk);
                doneInStage += 5 * weights;
            }
            held += doneInStage;
        }
        return peak;
    }

    /// <summary>Experts per group: as many working sets as the budget left to the quantizer holds (at least one), at most 16.</summary>
    private int GroupSize(IExpertLayout layout, ExpertListBuffers lists)
    {
        if (_options.GroupSize is int g) return Math.Clamp(g, 1, lists.Experts);
        long perExpert = WorkingSetBytes(layout, _options.BlockSize);
        return (int)Math.Clamp(_budget.AvailableForWorkingSet / Math.Max(1, perExpert), 1, Math.Min(16, lists.Experts));
    }

    /// <summary>
    /// Feeds the expert's stage-<paramref name="stage"/> inputs to <paramref name="consume"/> chunk by chunk: its list
    /// buffer rows, mapped through the already quantized earlier matrices for later stages. Memory: one chunk.
    /// </summary>
    private static void ForEachInputChunk(IExpertLayout layout, ExpertListBuffers lists, int expert, int stage,
        Dictionary<string, QuantizedWeight> done, CancellationToken ct, Action<float[], int> consume)
    {
        int n = lists.Count(expert);
        var x = new float[(long)Math.Min(n, TokenChunk) * layout.Dim];
        for (int t0 = 0; t0 < n; t0 += TokenChunk)
        {
            ct.ThrowIfCancellationRequested();
            int count = Math.Min(TokenChunk, n - t0);
            lists.Gather(expert, t0, count, x);
            var input = stage == 0 ? x : layout.StageInput(stage, x, count,
                kind => new Models.Layers.Matrix(done[kind].Dequantized, layout.Shape(kind).Rows, layout.Shape(kind).Cols));
            consume(input, count);
            // A later stage's input is fresh garbage per chunk (Mixtral-8x7B: 117 MB per 1024 tokens); left to the GC it
            // piled up to 8 GiB over one expert's 64 chunks under a 4 GiB budget. Collected here it is reused instead.
            if (stage > 0) MemoryBudget.CollectGarbage();
        }
    }

    /// <summary>
    /// Quantizes experts [g0, g1), copies their dequantized matrices into <paramref name="deq"/> and writes their codes.
    /// A method of its own so that nothing in <see cref="Run"/>'s frame refers to the group's results afterwards: while
    /// this loop sat in Run, its tier-0 temporaries kept the last group's results (Mixtral-8x7B: f32 dequantized and u8
    /// codes, 840 MiB per expert) reachable through the next group, ~0.6 GiB over a 4 GiB budget.
    /// </summary>
    private void QuantizeAndStoreGroup(string prefix, IExpertLayout layout, TensorStore store, ExpertListBuffers lists, int g0, int g1,
        int[] tokens, List<FallbackRecord> fallbacks, Dictionary<string, (double num, double den)[]> err,
        Dictionary<string, ActivationBuffer> deq, Dictionary<string, long[]> zeros, LayerResultFile output)
    {
        var results = QuantizeGroup(prefix, layout, store, lists, g0, g1, tokens, fallbacks, err);
        for (int e = g0; e < g1; e++)
        {
            foreach (var (kind, q) in results[e - g0])
            {
                var (rows, _) = layout.Shape(kind);
                deq[kind].Write((long)e * rows, q.Dequantized);
                zeros[kind][e] = q.Dequantized.Count(v => v == 0f);
            }
            output.WriteExpert(results[e - g0]);
        }
    }

    private List<Dictionary<string, QuantizedWeight>> QuantizeGroup(string prefix, IExpertLayout layout, TensorStore store,
        ExpertListBuffers lists, int g0, int g1, int[] tokens, List<FallbackRecord> fallbacks,
        Dictionary<string, (double num, double den)[]> err)
    {
        int G = g1 - g0;
        var results = Enumerable.Range(0, G).Select(_ => new Dictionary<string, QuantizedWeight>()).ToList();
        var n = new int[G];
        for (int i = 0; i < G; i++) tokens[g0 + i] = n[i] = lists.Count(g0 + i);
        for (int s = 0; s < layout.Stages.Count; s++)
        {
            var kinds = layout.Stages[s];
            int cols = layout.Shape(kinds[0]).Cols;
            long hSize = (long)cols * cols;
            // H [G, cols, cols]: one Hessian per expert, shared by the stage's matrices, built from streamed input chunks.
            var h = new float[G * hSize];
            for (int i = 0; i < G; i++)
            {
                BuildHessian(layout, lists, g0 + i, s, results[i], h.AsMemory((int)(i * hSize), (int)hSize), _ct);
                // The accumulator (a packed double triangle) is garbage now; free it before the next one and
                // before GPTQ allocates its working set (Mixtral-8x7B w2, 14336²: 8–11 GiB RSS under a 6 GiB budget while they were left to the GC).
                _budget.TrimResident();
            }
            foreach (var kind in kinds)
            {
                QuantizeKind(prefix, layout, store, lists, g0, s, kind, h, n, results, fallbacks, err);
                _budget.TrimResident();
            }
            h = null!;
            _budget.TrimResident(); // the stage's Hessians are garbage: free them before the next stage's
        }
        return results;
    }

    // The per-expert and per-matrix steps are methods of their own so that their large temporaries (the Hessian
    // accumulator, W and GPTQ's copies) are unreachable once they return: a local of an unoptimised (tier-0) method
    // stays reachable until the method exits, which held a 616 MB accumulator through GPTQ on DeepSeek-V3 width.

    /// <summary>The expert's stage-<paramref name="stage"/> Hessian, built from its streamed input chunks, into <paramref name="dst"/>
    /// [cols, cols], whose span also holds each chunk's f32 product until the Hessian is written.</summary>
    private static void BuildHessian(IExpertLayout layout, ExpertListBuffers lists, int expert, int stage,
        Dictionary<string, QuantizedWeight> done, Memory<float> dst, CancellationToken ct)
    {
        var acc = new HessianAccumulator(layout.Shape(layout.Stages[stage][0]).Cols, scratch: dst);
        ForEachInputChunk(layout, lists, expert, stage, done, ct, (input, count) => acc.Add(input, count));
        acc.WriteHessian(dst.Span);
    }

    /// <summary>Fetches the group's matrices of <paramref name="kind"/>, quantizes them with the stage's Hessians h [G, cols, cols]
    /// (each expert at its own type) and records the results and their output errors.</summary>
    private void QuantizeKind(string prefix, IExpertLayout layout, TensorStore store, ExpertListBuffers lists, int g0, int stage,
        string kind, float[] h, int[] n, List<Dictionary<string, QuantizedWeight>> results, List<FallbackRecord> fallbacks,
        Dictionary<string, (double num, double den)[]> err)
    {
        int G = results.Count;
        var (rows, cols) = layout.Shape(kind);
        long wSize = (long)rows * cols;
        var w = new float[G * wSize];
        var names = new string[G];
        for (int i = 0; i < G; i++)
        {
            names[i] = layout.WeightName(prefix, g0 + i, kind);
            // lazy fetch, not kept resident; FP8 weights dequantized with their block scales
            store.ReadWeight(names[i], rows, cols, w.AsSpan((int)(i * wSize), (int)wSize), unmapped: true);
        }
        // Each expert at its own type (mixed precision: one batch per type present).
        var types = names.Select(x => new Precision(_options.TypeOf(x), _options.StretchOf(x))).ToArray();
        var q = new QuantizedWeight[G];
        foreach (var type in types.Distinct())
            Quantize(type, [.. Enumerable.Range(0, G).Where(i => types[i] == type)], w, h, rows, cols, names, n, q, fallbacks);
        _budget.TrimResident(); // GPTQ's Hinv and W copies are garbage: free them before the output error allocates
        for (int i = 0; i < G; i++)
        {
            results[i][kind] = q[i];
            if (n[i] == 0) continue;
            var wi = w.AsSpan((int)(i * wSize), (int)wSize);
            err[kind][g0 + i] = n[i] > cols
                ? OutputErrorFromHessian(wi, q[i].Dequantized, h.AsSpan((int)(i * (long)cols * cols), cols * cols), n[i], rows, cols)
                : OutputError(w, i * wSize, q[i].Dequantized, layout, lists, g0 + i, stage, results[i], rows, cols, _ct);
            MemoryBudget.CollectGarbage();
        }
        if (_options.Probe is { } probe) Probe(probe, prefix, layout, store, lists, g0, stage, kind, w, h, names, n, types, q, results);
    }

    /// <summary>Quantizes the group's experts <paramref name="idx"/> (positions in the group) to <paramref name="type"/> into <paramref name="q"/>.</summary>
    private void Quantize(Precision type, int[] idx, float[] w, float[] h, int rows, int cols, string[] names, int[] n,
        QuantizedWeight[] q, List<FallbackRecord> fallbacks)
    {
        if (idx.Length == 0) return;
        long wSize = (long)rows * cols;
        if (_options.Method == QuantMethod.Rtn)
        {
            foreach (int i in idx) q[i] = Rtn.Quantize(type.Type, w.AsSpan((int)(i * wSize), (int)wSize), rows, cols, type.Stretch);
            return;
        }
        var r = GptqBatch.Quantize(w, h, rows, cols, idx, idx.Select(i => names[i]).ToList(),
            idx.Select(i => (long)n[i]).ToArray(), _options.GptqFor(type.Type, type.Stretch), MemoryBudget.CollectGarbage);
        for (int j = 0; j < idx.Length; j++) q[idx[j]] = r.Experts[j];
        fallbacks.AddRange(r.Fallbacks.Select(f => new FallbackRecord(f.Name, f.Reason)));
    }

    /// <summary>
    /// The probe pass of <c>--target-bits</c>: quantizes the group's matrices of this kind to every candidate type (the
    /// type already used is reused) and records per expert the change of its output on its calibration tokens
    /// (<see cref="ExpertOutputError"/>) and the stored bytes of each candidate.
    /// </summary>
    private void Probe(AllocationProbe probe, string prefix, IExpertLayout layout, TensorStore store, ExpertListBuffers lists,
        int g0, int stage, string kind, float[] w, float[] h, string[] names, int[] n, Precision[] used, QuantizedWeight[] q,
        List<Dictionary<string, QuantizedWeight>> done)
    {
        int G = names.Length;
        var (rows, cols) = layout.Shape(kind);
        float[]? readers = null;
        if (_options.Proxy == AllocationProxy.NextLayer)
        {
            if (_readers?.Prefix != prefix)
                _readers = (prefix, ResidualReaders.Gram(store, prefix, layout.Dim)
                    ?? throw new QmoeException($"--proxy next-layer: '{prefix}' is not a decoder-only layer in Hugging Face naming (model.layers.N); use --proxy output"));
            readers = _readers.Value.G;
        }
        var byType = new Dictionary<Precision, QuantizedWeight[]>();
        foreach (var type in Precision.Candidates)
        {
            var qt = (QuantizedWeight[])q.Clone();
            Quantize(type, [.. Enumerable.Range(0, G).Where(i => used[i] != type)], w, h, rows, cols, names, n, qt, new List<FallbackRecord>());
            byType[type] = qt;
        }
        for (int i = 0; i < G; i++)
        {
            var dense = new Dictionary<string, float[]> { [kind] = w.AsSpan((int)((long)i * rows * cols), rows * cols).ToArray() };
            var candidates = Precision.Candidates.Select(type => new AllocationCandidate(type.Name,
                n[i] == 0 ? 0 : ExpertOutputError(prefix, layout, store, lists, g0 + i, stage, kind, byType[type][i].Dequantized, dense, done[i], readers, _ct),
                AllocationProbe.CandidateBytes(byType[type][i]))).ToList();
            probe.Add(new AllocationMatrix(names[i], Codec.CompressedFormat.Group(prefix, kind), g0 + i, (long)rows * cols, n[i], candidates),
                Precision.Candidates.Where(c => c.Type is QuantType.Ternary or QuantType.Int2).Select(c => (c.Name, byType[c][i])));
        }
    }

    /// <summary>
    /// Σ g² ‖Δy‖² (with <paramref name="readers"/> G [Dim, Dim]: Σ g² Δyᵀ G Δy) over the expert's calibration tokens (g the token's gate weight), y [n, Dim] the expert's output, when matrix <paramref name="kind"/>
    /// alone is replaced by <paramref name="quantized"/>: the matrices of earlier stages are the quantized ones already
    /// chosen, the others dense (read from the checkpoint into <paramref name="dense"/> as needed). For the last stage
    /// this is ‖(W − Q) Xᵀ‖²; for an earlier one the change is carried through the rest of the expert (e.g. Mixtral's
    /// w1 through SiLU, the product with w3 and w2), so all matrices' errors are in the same units.
    /// </summary>
    private static double ExpertOutputError(string prefix, IExpertLayout layout, TensorStore store, ExpertListBuffers lists,
        int expert, int stage, string kind, float[] quantized, Dictionary<string, float[]> dense, Dictionary<string, QuantizedWeight> done,
        float[]? readers, CancellationToken ct)
    {
        int last = layout.Stages.Count - 1;
        float[] Dense(string k)
        {
            if (dense.TryGetValue(k, out var d)) return d;
            var (r, c) = layout.Shape(k);
            d = new float[(long)r * c];
            store.ReadWeight(layout.WeightName(prefix, expert, k), r, c, d, unmapped: true);
            return dense[k] = d;
        }
        Models.Layers.Matrix Get(string k, bool candidate)
        {
            var (r, c) = layout.Shape(k);
            int s = Enumerable.Range(0, layout.Stages.Count).First(i => layout.Stages[i].Contains(k));
            var data = k == kind ? (candidate ? quantized : Dense(k)) : s < stage ? done[k].Dequantized : Dense(k);
            return new Models.Layers.Matrix(data, r, c);
        }
        string outKind = layout.Stages[last].Single();
        var (outRows, outCols) = layout.Shape(outKind);
        double e = 0;
        int n = lists.Count(expert);
        var x = new float[(long)Math.Min(n, TokenChunk) * layout.Dim];
        var y = new float[(long)Math.Min(n, TokenChunk) * outRows];
        var gy = readers == null ? y : new float[y.Length]; // G Δy per token, one buffer for every chunk
        float[]? delta = stage == last ? Subtract(Dense(kind), quantized) : null;
        for (int t0 = 0; t0 < n; t0 += TokenChunk)
        {
            ct.ThrowIfCancellationRequested();
            if (t0 > 0 && last > 0) MemoryBudget.CollectGarbage(); // the previous chunk's stage inputs (see ForEachInputChunk)
            int count = Math.Min(TokenChunk, n - t0);
            lists.Gather(expert, t0, count, x);
            var yc = y.AsSpan(0, count * outRows);
            if (stage == last)
            {
                var input = last == 0 ? x : layout.StageInput(last, x, count, k => Get(k, false));
                Numerics.MatMul.XWt(input, delta!, yc, count, outRows, outCols);
            }
            else
            {
                var hc = layout.StageInput(last, x, count, k => Get(k, true));
                var hd = layout.StageInput(last, x, count, k => Get(k, false));
                System.Numerics.Tensors.TensorPrimitives.Subtract(hc.AsSpan(0, count * outCols), hd.AsSpan(0, count * outCols), hc.AsSpan(0, count * outCols));
                Numerics.MatMul.XWt(hc, Dense(outKind), yc, count, outRows, outCols);
            }
            // Σ g² ‖Δy‖² (or Δyᵀ G Δy) per token: the expert's output enters the residual scaled by its gate weight g.
            var gates = lists.Gates(expert, t0, count);
            var gyc = gy.AsSpan(0, count * outRows);
            if (readers != null) Numerics.MatMul.XWt(yc, readers, gyc, count, outRows, outRows); // G Δy per token (G symmetric)
            for (int i = 0; i < count; i++)
                e += (double)gates[i] * gates[i] * System.Numerics.Tensors.TensorPrimitives.Dot<float>(yc.Slice(i * outRows, outRows), gyc.Slice(i * outRows, outRows));
        }
        return e;
    }

    private static float[] Subtract(float[] a, float[] b)
    {
        var d = new float[a.Length];
        System.Numerics.Tensors.TensorPrimitives.Subtract(a, b, d);
        return d;
    }

    /// <summary>
    /// (‖(W − Q) Xᵀ‖², ‖W Xᵀ‖²) through the expert's Hessian h = 2/n XᵀX [cols, cols]: n/2 · (tr(D H Dᵀ), tr(W H Wᵀ)), D = W − Q,
    /// in blocks of <see cref="TokenChunk"/> rows. 2·rows·cols² multiply-adds instead of streaming the n inputs (2·n·rows·cols,
    /// plus recomputing a later stage's inputs): for n &gt; cols, e.g. Mixtral-8x7B with 128 × 2048 calibration tokens
    /// (~65k per expert), ~10 minutes per expert less. Equal up to rounding.
    /// </summary>
    internal static (double Error, double Total) OutputErrorFromHessian(ReadOnlySpan<float> w, ReadOnlySpan<float> q, ReadOnlySpan<float> h,
        long n, int rows, int cols)
    {
        int block = Math.Min(rows, TokenChunk);
        var d = new float[(long)block * cols];
        var p = new float[(long)block * cols];
        double e = 0, total = 0;
        for (int r0 = 0; r0 < rows; r0 += block)
        {
            int count = Math.Min(block, rows - r0), size = count * cols;
            var wb = w.Slice(r0 * cols, size);
            System.Numerics.Tensors.TensorPrimitives.Subtract(wb, q.Slice(r0 * cols, size), d.AsSpan(0, size));
            Numerics.MatMul.XWt(d, h, p, count, cols, cols); // D · Hᵀ = D · H (symmetric)
            for (int r = 0; r < count; r++)
                e += System.Numerics.Tensors.TensorPrimitives.Dot(d.AsSpan(r * cols, cols), p.AsSpan(r * cols, cols));
            Numerics.MatMul.XWt(wb, h, p, count, cols, cols);
            for (int r = 0; r < count; r++)
                total += System.Numerics.Tensors.TensorPrimitives.Dot(wb.Slice(r * cols, cols), p.AsSpan(r * cols, cols));
        }
        return (e * n / 2, total * n / 2);
    }

    /// <summary>(‖(W − Q) Xᵀ‖², ‖W Xᵀ‖²) for inputs X [n, cols] held in memory (the demo slice).</summary>
    internal static (double Error, double Total) OutputError(ReadOnlySpan<float> w, ReadOnlySpan<float> q, float[] x, int n, int rows, int cols)
    {
        var d = new float[rows * cols];
        System.Numerics.Tensors.TensorPrimitives.Subtract(w, q, d);
        var y = new float[n * rows];
        Numerics.MatMul.XWt(x, d, y, n, rows, cols);
        double e = SumOfSquares(y, rows);
        Numerics.MatMul.XWt(x, w, y, n, rows, cols);
        return (e, SumOfSquares(y, rows));
    }

    /// <summary>Σ y² over y [tokens, rows]: each token's row in f32, the rows summed in double (one f32 sum over millions
    /// of squares drifted by 1e-4 of the total: 2000 tokens × 1500 rows under AVX2).</summary>
    private static double SumOfSquares(ReadOnlySpan<float> y, int rows)
    {
        double s = 0;
        for (int t = 0; t + rows <= y.Length; t += rows) s += System.Numerics.Tensors.TensorPrimitives.Dot(y.Slice(t, rows), y.Slice(t, rows));
        return s;
    }

    /// <summary>
    /// (‖(W − Q) Xᵀ‖², ‖W Xᵀ‖²) for an expert's calibration inputs X [n, cols] of this stage, streamed in chunks:
    /// GPTQ's objective (H = 2/n XᵀX, so the ratio equals tr(D H Dᵀ) / tr(W H Wᵀ)), with two GEMMs of size
    /// n·rows·cols instead of rows·cols² (the cheaper way for n ≤ cols; else <see cref="OutputErrorFromHessian"/>).
    /// </summary>
    private static (double Error, double Total) OutputError(float[] wGroup, long offset, ReadOnlySpan<float> q, IExpertLayout layout,
        ExpertListBuffers lists, int expert, int stage, Dictionary<string, QuantizedWeight> done, int rows, int cols, CancellationToken ct)
    {
        int size = rows * cols;
        var d = new float[size];
        System.Numerics.Tensors.TensorPrimitives.Subtract(wGroup.AsSpan((int)offset, size), q, d);
        double e = 0, total = 0;
        var y = new float[(long)Math.Min(lists.Count(expert), TokenChunk) * rows];
        ForEachInputChunk(layout, lists, expert, stage, done, ct, (x, count) =>
        {
            var yc = y.AsSpan(0, count * rows);
            Numerics.MatMul.XWt(x, d, yc, count, rows, cols);
            e += SumOfSquares(yc, rows);
            Numerics.MatMul.XWt(x, wGroup.AsSpan((int)offset, size), yc, count, rows, cols);
            total += SumOfSquares(yc, rows);
        });
        return (e, total);
    }
}
