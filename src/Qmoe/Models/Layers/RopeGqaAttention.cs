namespace Qmoe.Models.Layers;

/// <summary>
/// Hugging Face's Llama-style self-attention (Mixtral, Qwen3-MoE): <c>{prefix}.{q,k,v,o}_proj</c>, q and k optionally
/// RMS-normed per head (Qwen3's q_norm / k_norm, over head_dim, before RoPE), rotary embeddings from each sequence's
/// cache position, grouped-query, scale head_dim^-½, causal. x: [batch.Tokens, hidden] → [batch.Tokens, hidden].
/// </summary>
public sealed class RopeGqaAttention
{
    private readonly AttentionWeights _w;
    private readonly RotaryEmbedding _rope;
    private readonly RmsNorm? _qNorm, _kNorm;
    private readonly int _heads, _kvHeads, _headDim;
    private readonly Action<int>? _checkLength;

    /// <param name="store">the checkpoint's tensors</param>
    /// <param name="prefix">the attention's tensor prefix (e.g. model.layers.0.self_attn)</param>
    /// <param name="hidden">the hidden size</param>
    /// <param name="heads">query heads</param>
    /// <param name="kvHeads">key/value heads (grouped-query attention: heads is a multiple)</param>
    /// <param name="headDim">dimension per head</param>
    /// <param name="rope">the rotary embedding applied to queries and keys</param>
    /// <param name="qkNormEps">with a value: per-head RMSNorm of queries and keys (Qwen3), this epsilon</param>
    /// <param name="checkLength">Called with each sequence's length after the new tokens (refuses lengths the model does not support).</param>
    public RopeGqaAttention(IO.TensorStore store, string prefix, int hidden, int heads, int kvHeads, int headDim, RotaryEmbedding rope,
        float? qkNormEps = null, Action<int>? checkLength = null)
    {
        _heads = heads; _kvHeads = kvHeads; _headDim = headDim; _rope = rope; _checkLength = checkLength;
        _w = AttentionWeights.Load(store, prefix, hidden, heads * headDim, kvHeads * headDim, ("q_proj", "k_proj", "v_proj", "o_proj"));
        if (qkNormEps is float eps)
        {
            _qNorm = new RmsNorm(store.ReadFloat32($"{prefix}.q_norm.weight", headDim), eps);
            _kNorm = new RmsNorm(store.ReadFloat32($"{prefix}.k_norm.weight", headDim), eps);
        }
    }

    public KvCache NewCache(int capacity) => new(_kvHeads * _headDim, capacity);

    /// <summary>Attention output of x; sequence s's new keys/values are appended to caches[s].</summary>
    public float[] Forward(float[] x, SequenceBatch batch, KvCache[] caches)
    {
        int qw = _heads * _headDim, kw = _kvHeads * _headDim, n = batch.Tokens;
        using var qBuffer = new Numerics.ScratchBuffer((long)n * qw);
        using var kBuffer = new Numerics.ScratchBuffer((long)n * kw);
        using var vBuffer = new Numerics.ScratchBuffer((long)n * kw);
        using var aBuffer = new Numerics.ScratchBuffer((long)n * qw);
        Span<float> q = qBuffer.Span, k = kBuffer.Span, v = vBuffer.Span;
        Linear.Forward(x, n, _w.Q, q);
        Linear.Forward(x, n, _w.K, k);
        Linear.Forward(x, n, _w.V, v);
        _qNorm?.Forward(q, n * _heads, q);   // per head: rows of head_dim
        _kNorm?.Forward(k, n * _kvHeads, k);
        var seqs = new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
        {
            int off = batch.Offsets[s], len = batch.Lengths[s];
            var c = caches[s];
            _checkLength?.Invoke(c.Length + len);
            _rope.Apply(q.Slice(off * qw, len * qw), len, _heads, c.Length);
            _rope.Apply(k.Slice(off * kw, len * kw), len, _kvHeads, c.Length);
            seqs[s] = c.Extend(off, k[(off * kw)..], v[(off * kw)..], len);
        }
        Attention.Forward(qBuffer.Array, seqs, _heads, _kvHeads, _headDim, 1f / MathF.Sqrt(_headDim), causal: true, null, aBuffer.Array);
        return Linear.Forward(aBuffer.Span, n, _w.O);
    }
}
