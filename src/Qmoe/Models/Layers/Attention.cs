using System.Numerics.Tensors;

namespace Qmoe.Models.Layers;

/// <summary>One sequence's share of a batched attention call.</summary>
/// <param name="Row">first row of this sequence in the batch's q and output buffers</param>
/// <param name="Count">number of query rows</param>
/// <param name="Pos0">absolute position of the first query (its KV cache length before this call, for causal masks)</param>
/// <param name="K">keys [KeyCount, kvHeads·headDim]</param>
/// <param name="V">values [KeyCount, kvHeads·valueHeadDim]</param>
/// <param name="KeyCount">number of visible key rows</param>
public readonly record struct AttentionSequence(int Row, int Count, int Pos0, float[] K, float[] V, int KeyCount);

/// <summary>
/// Scaled dot-product attention with optional additive bias, causal mask and grouped-query heads, shared by
/// every model family. Softmax in f32 with max subtraction (masked keys are skipped: exp(-inf) = 0).
/// </summary>
public static class Attention
{
    // Least multiply-adds worth spreading over threads (as for products, see Numerics.MatMul).
    private const long MinParallelMacs = 1 << 18;

    /// <summary>
    /// q: [rows, heads·headDim] for all sequences; output: same shape. Work is spread over (sequence, head) pairs.
    /// Query head h reads key/value head h / (heads / kvHeads).
    /// </summary>
    public static void Forward(float[] q, IReadOnlyList<AttentionSequence> seqs, int heads, int kvHeads, int headDim,
        float scale, bool causal, IAttentionBias? bias, float[] output) =>
        Forward(q, seqs, heads, kvHeads, headDim, headDim, scale, causal, bias, output);

    /// <summary>
    /// As above with value heads of their own width (MLA: keys qk_nope+qk_rope wide, values v_head_dim):
    /// q [rows, heads·headDim], output [rows, heads·valueHeadDim].
    /// </summary>
    public static void Forward(float[] q, IReadOnlyList<AttentionSequence> seqs, int heads, int kvHeads, int headDim,
        int valueHeadDim, float scale, bool causal, IAttentionBias? bias, float[] output)
    {
        if (heads % kvHeads != 0) throw new ArgumentException("heads must be a multiple of kvHeads");
        int group = heads / kvHeads, qStride = heads * headDim, kvStride = kvHeads * headDim;
        int vStride = kvHeads * valueHeadDim, oStride = heads * valueHeadDim;
        long work = 0; // multiply-adds: a decode step's few are done inline rather than split over threads
        foreach (var q0 in seqs) work += (long)q0.Count * q0.KeyCount * (headDim + valueHeadDim) * heads;
        Threads.For(seqs.Count * heads, work < MinParallelMacs ? 1 : 0, job =>
        {
            var s = seqs[job / heads];
            int h = job % heads, kvh = h / group;
            using var scoreBuffer = new Numerics.ScratchBuffer(s.KeyCount);
            Span<float> scores = scoreBuffer.Span;
            for (int i = 0; i < s.Count; i++)
            {
                int qPos = s.Pos0 + i;
                int visible = causal ? Math.Min(s.KeyCount, qPos + 1) : s.KeyCount;
                var qh = q.AsSpan((s.Row + i) * qStride + h * headDim, headDim);
                var sc = scores[..visible];
                AttentionRows.Scores(qh, s.K.AsSpan(kvh * headDim), kvStride, scale, sc);
                bias?.AddTo(h, qPos, sc);
                float max = TensorPrimitives.Max(sc);
                TensorPrimitives.Subtract(sc, max, sc);
                TensorPrimitives.Exp(sc, sc);
                TensorPrimitives.Divide(sc, TensorPrimitives.Sum(sc), sc);
                AttentionRows.WeightedSum(s.V.AsSpan(kvh * valueHeadDim), vStride, sc, output.AsSpan((s.Row + i) * oStride + h * valueHeadDim, valueHeadDim));
            }
        });
    }
}
