using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// One DeepSeek-V3 decoder layer (HF <c>DeepseekV3DecoderLayer</c>): h += mla(rms_norm(h)); h += mlp(rms_norm(h)).
/// The MLP is dense (<c>mlp.{gate,up,down}_proj</c>, intermediate_size) for the first first_k_dense_replace
/// layers, else an MoE: <see cref="GroupLimitedRouter"/> over <c>mlp.gate</c>, routed SwiGLU experts
/// <c>mlp.experts.E.*</c> weighted per token, plus the shared experts <c>mlp.shared_experts.*</c> (width
/// moe_intermediate_size · n_shared_experts) on every token: y = Σ wₖ expertₖ(x) + shared(x).
/// </summary>
public sealed class DeepseekV3Layer : MoeDecoderLayer
{
    private readonly MlaAttention _attn;

    public DeepseekV3Layer(TensorStore store, DeepseekV3Config cfg, int index, RotaryEmbedding rope, Func<DeepseekV3Layer, IExperts>? expertFactory)
        : base(store, index, cfg.HiddenSize, cfg.RmsNormEps, cfg.IsSparse(index) ? "mlp" : null)
    {
        int d = cfg.HiddenSize;
        _attn = new MlaAttention(store, cfg, $"{Name}.self_attn", rope);
        if (MoePrefix is { } mlp)
        {
            int E = cfg.NumRoutedExperts;
            var router = new GroupLimitedRouter(Matrix.View(store, $"{mlp}.gate.weight", E, d),
                store.ReadFloat32($"{mlp}.gate.e_score_correction_bias", E), cfg.ExpertsPerToken, cfg.NumGroups,
                cfg.TopkGroups, cfg.NormTopkProb, (float)cfg.RoutedScalingFactor);
            SetMoe(router,
                () => expertFactory != null ? expertFactory(this)
                    : SwiGluExperts.Load(store, mlp, E, d, cfg.MoeIntermediateSize, SwiGluExpertLayout.ProjNames),
                cfg.NumSharedExperts > 0 ? GatedMlp.Load(store, $"{mlp}.shared_experts", d, cfg.MoeIntermediateSize * cfg.NumSharedExperts) : null);
        }
        else SetDenseMlp(GatedMlp.Load(store, $"{Name}.mlp", d, cfg.IntermediateSize));
    }

    public override KvCache NewCache(int capacity) => _attn.NewCache(capacity);

    protected override float[] Attend(float[] x, SequenceBatch batch, KvCache[] caches) => _attn.Forward(x, batch, caches);
}
