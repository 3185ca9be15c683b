using System.Numerics.Tensors;
using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>
/// One Mixtral decoder layer: h += attn(rms_norm(h)); h += moe(rms_norm(h)). Attention is grouped-query with
/// rotary embeddings, scaled by 1/sqrt(head_dim), causal; the MoE routes each token to its top-k experts
/// (softmax in f32, weights renormalised, no capacity). Hidden states h: [batch.Tokens, hidden].
/// </summary>
public sealed class MixtralLayer : IDecoderLayer
{
    private readonly MixtralConfig _cfg;
    private readonly RmsNorm _inputNorm, _postNorm;
    private readonly AttentionWeights _attn;
    private readonly RotaryEmbedding _rope;

    public int Index { get; }
    /// <summary>e.g. "model.layers.1"</summary>
    public string Name { get; }
    /// <summary>The MoE's tensor prefix, e.g. "model.layers.1.block_sparse_moe" (HF naming).</summary>
    public string MoePrefix { get; }
    public Router Router { get; }
    /// <summary>The layer's experts (replaceable: dequantized or compressed experts).</summary>
    public IExperts Experts { get; set; }

    public MixtralLayer(TensorStore store, MixtralConfig cfg, int index, RotaryEmbedding rope, Func<MixtralLayer, IExperts>? expertFactory)
    {
        _cfg = cfg; _rope = rope; Index = index;
        Name = $"model.layers.{index}";
        MoePrefix = $"{Name}.block_sparse_moe";
        int d = cfg.HiddenSize;
        _inputNorm = new RmsNorm(store.ReadFloat32($"{Name}.input_layernorm.weight", d), cfg.RmsNormEps);
        _postNorm = new RmsNorm(store.ReadFloat32($"{Name}.post_attention_layernorm.weight", d), cfg.RmsNormEps);
        _attn = AttentionWeights.Load(store, $"{Name}.self_attn", d, cfg.QWidth, cfg.KvWidth, ("q_proj", "k_proj", "v_proj", "o_proj"));
        Router = new Router(Matrix.View(store, $"{MoePrefix}.gate.weight", cfg.NumExperts, d), cfg.ExpertsPerToken, renormalize: true);
        Experts = expertFactory != null ? expertFactory(this) : LoadDenseExperts(store, cfg, MoePrefix);
    }

    /// <summary>Views of the checkpoint's experts <c>{prefix}.experts.{e}.w1/w2/w3.weight</c> (nothing is read yet).</summary>
    public static SwiGluExperts LoadDenseExperts(TensorStore store, MixtralConfig cfg, string prefix) =>
        SwiGluExperts.Load(store, prefix, cfg.NumExperts, cfg.HiddenSize, cfg.IntermediateSize, ("w1", "w3", "w2"));

    public KvCache NewCache(int capacity) => new(_cfg.KvWidth, capacity);

    /// <summary>Self-attention sub-layer; caches[s] holds sequence s's keys/values so far and receives the new ones.</summary>
    public void SelfAttention(float[] h, SequenceBatch batch, KvCache[] caches)
    {
        int qw = _cfg.QWidth, kw = _cfg.KvWidth;
        var x = _inputNorm.Forward(h, batch.Tokens);
        var q = Linear.Forward(x, batch.Tokens, _attn.Q);
        var k = Linear.Forward(x, batch.Tokens, _attn.K);
        var v = Linear.Forward(x, batch.Tokens, _attn.V);
        var seqs = new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
        {
            int off = batch.Offsets[s], n = batch.Lengths[s];
            var c = caches[s];
            int pos0 = c.Length;
            _cfg.CheckLength(pos0 + n);
            _rope.Apply(q.AsSpan(off * qw, n * qw), n, _cfg.NumHeads, pos0);
            _rope.Apply(k.AsSpan(off * kw, n * kw), n, _cfg.NumKvHeads, pos0);
            seqs[s] = c.Extend(off, k.AsSpan(off * kw), v.AsSpan(off * kw), n);
        }
        var a = new float[batch.Tokens * qw];
        Attention.Forward(q, seqs, _cfg.NumHeads, _cfg.NumKvHeads, _cfg.HeadDim, 1f / MathF.Sqrt(_cfg.HeadDim), causal: true, null, a);
        var y = Linear.Forward(a, batch.Tokens, _attn.O);
        TensorPrimitives.Add(h, y, h);
    }

    /// <summary>The normed input of the MoE sub-layer: rms_norm(h).</summary>
    public float[] MlpInput(float[] h, int tokens) => _postNorm.Forward(h, tokens);

    /// <summary>Top-k routing of the normed MoE input (no capacity).</summary>
    public Routing Route(float[] mlpInput, SequenceBatch batch) => Router.Route(mlpInput, batch.Lengths, capacity: 0);

    /// <summary>h += moe(x) for the normed input x and its routing.</summary>
    public void AddMlp(float[] h, float[] x, int tokens, Routing routing)
    {
        var y = new float[tokens * _cfg.HiddenSize];
        MoeDispatch.Forward(x, routing, Experts, y);
        TensorPrimitives.Add(h, y, h);
    }

    /// <summary>The whole MoE sub-layer; returns its routing.</summary>
    public Routing FeedForwardLayer(float[] h, SequenceBatch batch)
    {
        var x = MlpInput(h, batch.Tokens);
        var routing = Route(x, batch);
        AddMlp(h, x, batch.Tokens, routing);
        return routing;
    }
}
