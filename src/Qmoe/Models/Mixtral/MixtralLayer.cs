using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>
/// One Mixtral decoder layer: h += attn(rms_norm(h)); h += moe(rms_norm(h)). Attention is grouped-query with
/// rotary embeddings, scaled by 1/sqrt(head_dim), causal; the MoE (<c>block_sparse_moe</c>) routes each token to its
/// top-k experts (softmax in f32, weights renormalised, no capacity). Hidden states h: [batch.Tokens, hidden].
/// </summary>
public sealed class MixtralLayer : MoeDecoderLayer
{
    private readonly RopeGqaAttention _attn;

    public MixtralLayer(TensorStore store, MixtralConfig cfg, int index, RotaryEmbedding rope, Func<MixtralLayer, IExperts>? expertFactory)
        : base(store, index, cfg.HiddenSize, cfg.RmsNormEps, "block_sparse_moe")
    {
        int d = cfg.HiddenSize;
        string moe = MoePrefix!;
        _attn = new RopeGqaAttention(store, $"{Name}.self_attn", d, cfg.NumHeads, cfg.NumKvHeads, cfg.HeadDim, rope, checkLength: cfg.CheckLength);
        SetMoe(new Router(Matrix.View(store, $"{moe}.gate.weight", cfg.NumExperts, d), cfg.ExpertsPerToken, renormalize: true),
            () => expertFactory != null ? expertFactory(this) : LoadDenseExperts(store, cfg, moe));
    }

    /// <summary>Views of the checkpoint's experts <c>{prefix}.experts.{e}.w1/w2/w3.weight</c> (nothing is read yet).</summary>
    public static SwiGluExperts LoadDenseExperts(TensorStore store, MixtralConfig cfg, string prefix) =>
        SwiGluExperts.Load(store, prefix, cfg.NumExperts, cfg.HiddenSize, cfg.IntermediateSize, ("w1", "w3", "w2"));

    public override KvCache NewCache(int capacity) => _attn.NewCache(capacity);

    protected override float[] Attend(float[] x, SequenceBatch batch, KvCache[] caches) => _attn.Forward(x, batch, caches);
}
