using System.Numerics.Tensors;
using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Qwen3Moe;

/// <summary>
/// One Qwen3-MoE decoder layer (HF <c>Qwen3MoeDecoderLayer</c>): h += attn(rms_norm(h)); h += mlp(rms_norm(h)).
/// Attention: q = q_norm(q_proj x) and k = k_norm(k_proj x) per head (RMSNorm over head_dim, before RoPE),
/// grouped-query, RoPE over the whole head_dim, scale head_dim^-½, causal. MLP: sparse (softmax router over
/// <c>mlp.gate</c>, top-k, renormalised when norm_topk_prob; SwiGLU experts <c>mlp.experts.E.{gate,up,down}_proj</c>)
/// or dense (<c>mlp.{gate,up,down}_proj</c>, intermediate_size) per <see cref="Qwen3MoeConfig.IsSparse"/>.
/// </summary>
public sealed class Qwen3MoeLayer : IDecoderLayer
{
    private readonly Qwen3MoeConfig _cfg;
    private readonly RmsNorm _inputNorm, _postNorm, _qNorm, _kNorm;
    private readonly AttentionWeights _attn;
    private readonly RotaryEmbedding _rope;
    private readonly GatedMlp? _denseMlp;

    public int Index { get; }
    public string Name { get; }
    /// <summary>The MoE's tensor prefix, e.g. "model.layers.1.mlp"; null for a dense layer.</summary>
    public string? MoePrefix { get; }
    public bool IsSparse { get; }
    /// <summary>The softmax router (sparse layers only).</summary>
    public Router? Router { get; }
    /// <summary>The layer's experts (sparse layers only; replaceable: dequantized or compressed experts).</summary>
    public IExperts Experts
    {
        get => _experts ?? throw new InvalidOperationException($"{Name} is a dense layer");
        set => _experts = IsSparse ? value : throw new InvalidOperationException($"{Name} is a dense layer");
    }
    private IExperts? _experts;

    public Qwen3MoeLayer(TensorStore store, Qwen3MoeConfig cfg, int index, RotaryEmbedding rope, Func<Qwen3MoeLayer, IExperts>? expertFactory)
    {
        _cfg = cfg; _rope = rope; Index = index;
        Name = $"model.layers.{index}";
        IsSparse = cfg.IsSparse(index);
        string mlp = $"{Name}.mlp";
        MoePrefix = IsSparse ? mlp : null;
        int d = cfg.HiddenSize;
        _inputNorm = new RmsNorm(store.ReadFloat32($"{Name}.input_layernorm.weight", d), cfg.RmsNormEps);
        _postNorm = new RmsNorm(store.ReadFloat32($"{Name}.post_attention_layernorm.weight", d), cfg.RmsNormEps);
        _qNorm = new RmsNorm(store.ReadFloat32($"{Name}.self_attn.q_norm.weight", cfg.HeadDim), cfg.RmsNormEps);
        _kNorm = new RmsNorm(store.ReadFloat32($"{Name}.self_attn.k_norm.weight", cfg.HeadDim), cfg.RmsNormEps);
        _attn = AttentionWeights.Load(store, $"{Name}.self_attn", d, cfg.QWidth, cfg.KvWidth, ("q_proj", "k_proj", "v_proj", "o_proj"));
        if (IsSparse)
        {
            Router = new Router(Matrix.View(store, $"{mlp}.gate.weight", cfg.NumExperts, d), cfg.ExpertsPerToken, cfg.NormTopkProb);
            _experts = expertFactory != null ? expertFactory(this)
                : SwiGluExperts.Load(store, mlp, cfg.NumExperts, d, cfg.MoeIntermediateSize, SwiGluExpertLayout.ProjNames);
        }
        else _denseMlp = GatedMlp.Load(store, mlp, d, cfg.IntermediateSize);
    }

    public KvCache NewCache(int capacity) => new(_cfg.KvWidth, capacity);

    public void SelfAttention(float[] h, SequenceBatch batch, KvCache[] caches)
    {
        int qw = _cfg.QWidth, kw = _cfg.KvWidth, n = batch.Tokens;
        var x = _inputNorm.Forward(h, n);
        var q = Linear.Forward(x, n, _attn.Q);
        var k = Linear.Forward(x, n, _attn.K);
        var v = Linear.Forward(x, n, _attn.V);
        _qNorm.Forward(q, n * _cfg.NumHeads, q);   // per head: rows of head_dim
        _kNorm.Forward(k, n * _cfg.NumKvHeads, k);
        var seqs = new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
        {
            int off = batch.Offsets[s], len = batch.Lengths[s];
            var c = caches[s];
            _rope.Apply(q.AsSpan(off * qw, len * qw), len, _cfg.NumHeads, c.Length);
            _rope.Apply(k.AsSpan(off * kw, len * kw), len, _cfg.NumKvHeads, c.Length);
            seqs[s] = c.Extend(off, k.AsSpan(off * kw), v.AsSpan(off * kw), len);
        }
        var a = new float[n * qw];
        Attention.Forward(q, seqs, _cfg.NumHeads, _cfg.NumKvHeads, _cfg.HeadDim, 1f / MathF.Sqrt(_cfg.HeadDim), causal: true, null, a);
        TensorPrimitives.Add(h, Linear.Forward(a, n, _attn.O), h);
    }

    /// <summary>The normed input of the MLP sub-layer: rms_norm(h).</summary>
    public float[] MlpInput(float[] h, int tokens) => _postNorm.Forward(h, tokens);

    /// <summary>Top-k routing of the normed MLP input (sparse layers).</summary>
    public Routing Route(float[] mlpInput, SequenceBatch batch) =>
        (Router ?? throw new InvalidOperationException($"{Name} is a dense layer")).Route(mlpInput, batch.Lengths, capacity: 0);

    /// <summary>h += moe(x) for the normed input x and its routing (sparse layers).</summary>
    public void AddMlp(float[] h, float[] x, int tokens, Routing routing) => AddToResidual(h, x, tokens, routing);

    /// <summary>h += mlp(x): the dense MLP, or the experts weighted by <paramref name="routing"/>.</summary>
    private void AddToResidual(float[] h, float[] x, int tokens, Routing? routing)
    {
        var y = new float[tokens * _cfg.HiddenSize];
        if (_denseMlp != null) _denseMlp.Forward(x, tokens, y);
        else MoeDispatch.Forward(x, routing ?? throw new ArgumentNullException(nameof(routing)), Experts, y);
        TensorPrimitives.Add(h, y, h);
    }

    public Routing? FeedForwardLayer(float[] h, SequenceBatch batch)
    {
        var x = MlpInput(h, batch.Tokens);
        var routing = IsSparse ? Route(x, batch) : null;
        AddToResidual(h, x, batch.Tokens, routing);
        return routing;
    }
}
