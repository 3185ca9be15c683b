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

        public IExperts CreateExperts() => Layout.CreateExperts(Experts,
            (e, kind) => Dequantized[kind].Matrix((long)e * Layout.Shape(kind).Rows, Layout.Shape(kind).Rows));

        public void Dispose() { foreach (var b in Dequantized.Values) b.Dispose(); }
    }

    private readonly CompressionOptions _options;
    private readonly MemoryBudget _budget;
    private readonly Action<string>? _progress;

    public ExpertLayerQuantizer(CompressionOptions options, MemoryBudget budget, Action<string>? progress)
    {
        _options = options; _budget = budget; _progress = progress;
    }

    public (QuantizedLayer Layer, LayerReport Report) Run(string prefix, IExpertLayout layout, TensorStore store,
        ExpertListBuffers lists, LayerResultFile output, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        int E = lists.Experts;
        var caps = lists.Cap(_options.TokenCapFactor)
            .Select(c => new CapRecord(layout.ExpertName(prefix, c.Expert), c.Tokens, c.Cap)).ToList();
        var deq = layout.Kinds.ToDictionary(k => k, k =>
            new ActivationBuffer((long)E * layout.Shape(k).Rows, layout.Shape(k).Cols, _budget, $"deq-{k}",
                _options.Type == QuantType.Ternary ? DType.BF16 : DType.F32)); // ternary levels are bf16: exact at half the memory
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
                _progress?.Invoke($"{prefix}: experts {g0}–{g1 - 1} of {E}");
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
                // The group's weights, Hessians and inputs (large-object-heap arrays) are garbage now; collect them
                // before the next group allocates its own, compacting the LOH (otherwise never compacted) so freed
                // gigabyte arrays do not fragment it: peak memory stays at the budget plus one group.
                results = null!;
                System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
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

    /// <summary>
    /// Experts per group: as many as the free budget holds, at most 16. Per expert, GPTQ holds about five f32 copies
    /// of each weight matrix (fetched, batch copy, working copy, dequantized, codes) and four of each Hessian
    /// (accumulated, batch copy, Cholesky, inverse factor), plus the stage inputs.
    /// </summary>
    private int GroupSize(IExpertLayout layout, ExpertListBuffers lists)
    {
        if (_options.GroupSize is int g) return Math.Clamp(g, 1, lists.Experts);
        long maxTokens = Enumerable.Range(0, lists.Experts).Max(lists.Count);
        long perExpert = layout.Kinds.Sum(k => 5L * layout.Shape(k).Rows * layout.Shape(k).Cols * 4)
                       + layout.Stages.Sum(s => 4L * layout.Shape(s[0]).Cols * layout.Shape(s[0]).Cols * 4
                                              + maxTokens * layout.Shape(s[0]).Cols * 4);
        long free = _budget.Limit - _budget.Used;
        return (int)Math.Clamp(free / Math.Max(1, perExpert), 1, Math.Min(16, lists.Experts));
    }

    private List<Dictionary<string, QuantizedWeight>> QuantizeGroup(string prefix, IExpertLayout layout, TensorStore store,
        ExpertListBuffers lists, int g0, int g1, int[] tokens, List<FallbackRecord> fallbacks,
        Dictionary<string, (double num, double den)[]> err)
    {
        int G = g1 - g0;
        var results = Enumerable.Range(0, G).Select(_ => new Dictionary<string, QuantizedWeight>()).ToList();
        var x = new float[G][];
        var n = new int[G];
        for (int i = 0; i < G; i++)
        {
            x[i] = lists.Gather(g0 + i);
            n[i] = x[i].Length / layout.Dim;
            tokens[g0 + i] = n[i];
        }
        for (int s = 0; s < layout.Stages.Count; s++)
        {
            var kinds = layout.Stages[s];
            int cols = layout.Shape(kinds[0]).Cols;
            // H [G, cols, cols]: one Hessian per expert, shared by the stage's matrices.
            var h = new float[(long)G * cols * cols];
            var inputs = new float[G][];
            for (int i = 0; i < G; i++)
            {
                inputs[i] = s == 0 ? x[i] : layout.StageInput(s, x[i], n[i],
                    kind => new Models.Layers.Matrix(results[i][kind].Dequantized, layout.Shape(kind).Rows, layout.Shape(kind).Cols));
                var acc = new HessianAccumulator(cols);
                acc.Add(inputs[i], n[i]);
                acc.ToHessian().CopyTo(h.AsSpan(i * cols * cols, cols * cols));
            }
            foreach (var kind in kinds)
            {
                var (rows, _) = layout.Shape(kind);
                var w = new float[(long)G * rows * cols];
                var names = new string[G];
                for (int i = 0; i < G; i++)
                {
                    names[i] = layout.WeightName(prefix, g0 + i, kind);
                    // lazy fetch, not kept resident; FP8 weights dequantized with their block scales
                    store.ReadWeight(names[i], rows, cols, w.AsSpan(i * rows * cols, rows * cols), unmapped: true);
                }
                IReadOnlyList<QuantizedWeight> q;
                if (_options.Method == QuantMethod.Rtn)
                    q = Enumerable.Range(0, G).Select(i => Rtn.Quantize(_options.Type, w.AsSpan(i * rows * cols, rows * cols), rows, cols)).ToList();
                else
                {
                    var r = GptqBatch.Quantize(w, h, rows, cols, names, n.Select(v => (long)v).ToArray(), _options.Gptq);
                    q = r.Experts;
                    fallbacks.AddRange(r.Fallbacks.Select(f => new FallbackRecord(f.Name, f.Reason)));
                }
                for (int i = 0; i < G; i++)
                {
                    results[i][kind] = q[i];
                    if (n[i] == 0) continue;
                    err[kind][g0 + i] = OutputError(w.AsSpan(i * rows * cols, rows * cols), q[i].Dequantized, inputs[i], n[i], rows, cols);
                }
            }
        }
        return results;
    }

    /// <summary>
    /// (‖(W − Q) Xᵀ‖², ‖W Xᵀ‖²) for an expert's calibration inputs X [n, cols]: GPTQ's objective (H = 2/n XᵀX, so
    /// the ratio equals tr(D H Dᵀ) / tr(W H Wᵀ)), computed with two GEMMs of size n·rows·cols instead of rows·cols².
    /// </summary>
    internal static (double Error, double Total) OutputError(ReadOnlySpan<float> w, ReadOnlySpan<float> q, float[] x, int n, int rows, int cols)
    {
        var d = new float[rows * cols];
        System.Numerics.Tensors.TensorPrimitives.Subtract(w, q, d);
        var y = new float[n * rows];
        Numerics.MatMul.XWt(x, d, y, n, rows, cols);
        double e = System.Numerics.Tensors.TensorPrimitives.Dot<float>(y, y);
        Numerics.MatMul.XWt(x, w, y, n, rows, cols);
        return (e, System.Numerics.Tensors.TensorPrimitives.Dot<float>(y, y));
    }
}
