using Qmoe.IO;

namespace Qmoe.Compression;

/// <summary>
/// Where a sparse layer's output is read next, for <see cref="AllocationProxy.NextLayer"/>: an expert's output change Δy
/// enters the residual stream, and what the model does with it depends on the rows that read that stream next. With
/// G = Σ diag(n) WᵀW diag(n) over those readers (W their weights, n the RMSNorm weight in front of them), Δyᵀ G Δy is
/// the squared change of their inputs' projections; G is scaled to trace = hidden size, so an isotropic error scores as
/// ‖Δy‖² does. An error of w1/w3 reaches the residual as W2·Δh, inside W2's column space, where w2's own error spreads
/// over every direction; plain ‖Δy‖² overrated w2 about threefold against measured CE (docs/RESULTS.md, "Mixed precision").
/// Decoder-only checkpoints in Hugging Face naming: layer L's readers are layer L + 1's attention input projections
/// (every <c>self_attn</c> matrix but <c>o_proj</c>, after <c>input_layernorm</c>) and its MLP's router and input
/// matrices (every <c>mlp</c> / <c>block_sparse_moe</c> matrix but <c>down_proj</c> / <c>w2</c>, after
/// <c>post_attention_layernorm</c>); the last layer's are <c>model.norm</c> and the head.
/// </summary>
public static unsafe partial class ResidualReaders
{
    /// <summary>Routed experts of the next layer read in full; more are sampled (the first ones, scaled).</summary>
    public const int SampledExperts = 16;

    [System.Text.RegularExpressions.GeneratedRegex(@"\.experts\.(\d+)\.")]
    private static partial System.Text.RegularExpressions.Regex ExpertIndex();

    /// <summary>Refuses (one line) a checkpoint without decoder-only naming, before any work.</summary>
    public static void Check(string modelDir)
    {
        using var store = TensorStore.Open(modelDir);
        if (!store.Contains("model.norm.weight") || !store.Names.Any(n => n.StartsWith("model.layers.", StringComparison.Ordinal)))
            throw new QmoeException($"--proxy next-layer: {modelDir} is not a decoder-only checkpoint in Hugging Face naming (model.layers.N, model.norm); use --proxy output");
    }

    /// <summary>G [d, d] for the sparse layer at <paramref name="prefix"/> (e.g. <c>model.layers.3.mlp</c>); null
    /// when the checkpoint does not use decoder-only naming (encoder-decoders).</summary>
    public static float[]? Gram(TensorStore store, string prefix, int d)
    {
        var m = System.Text.RegularExpressions.Regex.Match(prefix, @"^model\.layers\.(\d+)\.");
        if (!m.Success) return null;
        string next = $"model.layers.{int.Parse(m.Groups[1].Value) + 1}.";
        var acc = new Quantization.HessianAccumulator(d); // Σ over reader rows of (n ⊙ w)ᵀ(n ⊙ w), up to a common scale
        int readers = 0;
        if (store.Contains(next + "input_layernorm.weight"))
        {
            var attnNorm = store.ReadFloat32(next + "input_layernorm.weight", d);
            var mlpNorm = store.ReadFloat32(next + "post_attention_layernorm.weight", d);
            // Routed experts beyond the first SampledExperts stand for the rest: each sampled one counts E / SampledExperts
            // times (DeepSeek-V3's 256 experts would cost ~50 T multiply-adds per layer in full).
            int experts = store.Names.Where(n => n.StartsWith(next, StringComparison.Ordinal)).Select(n => ExpertIndex().Match(n))
                .Where(x => x.Success).Select(x => int.Parse(x.Groups[1].Value)).DefaultIfEmpty(-1).Max() + 1;
            var mlpExpertNorm = experts > SampledExperts
                ? mlpNorm.Select(v => v * MathF.Sqrt(experts / (float)SampledExperts)).ToArray() : mlpNorm;
            foreach (var name in store.Names.Where(n => n.StartsWith(next, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
            {
                var t = store.Info(name);
                if (t.Shape.Length != 2 || t.Shape[1] != d || !name.EndsWith(".weight", StringComparison.Ordinal)) continue;
                string rest = name[next.Length..];
                if (rest.StartsWith("self_attn.", StringComparison.Ordinal) && !rest.Contains("o_proj")) Add(name, t, attnNorm);
                else if ((rest.StartsWith("mlp.", StringComparison.Ordinal) || rest.StartsWith("block_sparse_moe.", StringComparison.Ordinal))
                         && !rest.Contains("down_proj") && !rest.EndsWith(".w2.weight", StringComparison.Ordinal))
                {
                    var expert = ExpertIndex().Match(name);
                    if (!expert.Success) Add(name, t, mlpNorm);
                    else if (int.Parse(expert.Groups[1].Value) < SampledExperts) Add(name, t, mlpExpertNorm);
                }
            }
        }
        else
        {
            string head = store.Contains("lm_head.weight") ? "lm_head.weight" : "model.embed_tokens.weight";
            Add(head, store.Info(head), store.ReadFloat32("model.norm.weight", d));
        }
        if (readers == 0) return null;
        var g = acc.ToHessian();
        double trace = 0;
        for (int i = 0; i < d; i++) trace += g[(long)i * d + i];
        if (!(trace > 0) || double.IsInfinity(trace)) return null;
        for (long i = 0; i < g.Length; i++) g[i] = (float)(g[i] * d / trace);
        return g;

        // The reader's rows scaled by its norm weight, into the accumulator, a block of rows at a time (a head of
        // 163,840 × 7,168 is 4.7 GB in f32): F32 and BF16 from the mapping; F16 and FP8 (small projections) whole.
        void Add(string name, TensorInfo t, float[] norm)
        {
            readers++;
            long rows = t.Shape[0];
            int block = (int)Math.Min(rows, Math.Max(1, (1 << 22) / d));
            var w = new float[(long)block * d];
            float[]? whole = null;
            if (t.DType is not (DType.F32 or DType.BF16))
            {
                if (rows * d > 1 << 26) throw new QmoeException($"next-layer proxy: reader '{name}' ({t.DType}, {rows}×{d}) is too large to read whole");
                whole = new float[rows * d];
                store.ReadWeight(name, (int)rows, d, whole, unmapped: true);
            }
            byte* mapped = whole == null ? store.FileOf(name).Pointer(t) : null;
            for (long r0 = 0; r0 < rows; r0 += block)
            {
                int n = (int)Math.Min(block, rows - r0);
                var dst = w.AsSpan(0, n * d);
                if (whole != null) whole.AsSpan((int)(r0 * d), n * d).CopyTo(dst);
                else if (t.DType == DType.F32) new ReadOnlySpan<float>((float*)mapped + r0 * d, n * d).CopyTo(dst);
                else BFloat16.ToFloat(new ReadOnlySpan<ushort>((ushort*)mapped + r0 * d, n * d), dst);
                for (int r = 0; r < n; r++) System.Numerics.Tensors.TensorPrimitives.Multiply(w.AsSpan(r * d, d), norm, w.AsSpan(r * d, d));
                acc.Add(dst, n);
            }
        }
    }
}
