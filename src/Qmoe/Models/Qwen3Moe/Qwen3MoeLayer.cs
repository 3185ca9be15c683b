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
public sealed class Qwen3MoeLayer : MoeDecoderLayer
{
    private readonly RopeGqaAttention _attn;

    public Qwen3MoeLayer(TensorStore store, Qwen3MoeConfig cfg, int index, RotaryEmbedding rope, Func<Qwen3MoeLayer, IExperts>? expertFactory)
        : base(store, index, cfg.HiddenSize, cfg.RmsNormEps, cfg.IsSparse(index) ? "mlp" : null)
    {
        int d = cfg.HiddenSize;
        _attn = new RopeGqaAttention(store, $"{Name}.self_attn", d, cfg.NumHeads, cfg.NumKvHeads, cfg.HeadDim, rope, qkNormEps: cfg.RmsNormEps);
        if (MoePrefix is { } mlp)
            SetMoe(new Router(Matrix.View(store, $"{mlp}.gate.weight", cfg.NumExperts, d), cfg.ExpertsPerToken, cfg.NormTopkProb),
                () => expertFactory != null ? expertFactory(this)
                    : SwiGluExperts.Load(store, mlp, cfg.NumExperts, d, cfg.MoeIntermediateSize, SwiGluExpertLayout.ProjNames));
        else SetDenseMlp(GatedMlp.Load(store, $"{Name}.mlp", d, cfg.IntermediateSize));
    }

    public override KvCache NewCache(int capacity) => _attn.NewCache(capacity);

    protected override float[] Attend(float[] x, SequenceBatch batch, KvCache[] caches) => _attn.Forward(x, batch, caches);
}
