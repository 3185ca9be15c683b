using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// A DeepSeek-V3 / Kimi-K2 causal LM (HF <c>DeepseekV3ForCausalLM</c>) running from a memory-mapped checkpoint;
/// FP8 checkpoints (quantization_config fp8) are dequantized on load. Multi-token-prediction layers
/// (num_nextn_predict_layers) are not used, as in HF.
/// </summary>
public sealed class DeepseekV3Model : DecoderOnlyModel<DeepseekV3Layer>
{
    public DeepseekV3Config Config { get; }

    private DeepseekV3Model(DeepseekV3Config cfg, TensorStore store, RotaryEmbedding rope, Func<DeepseekV3Layer, IExperts>? expertFactory)
        : base(store, cfg.VocabSize, cfg.HiddenSize, cfg.RmsNormEps, cfg.EosTokenIds,
               i => new DeepseekV3Layer(store, cfg, i, rope, expertFactory), cfg.NumLayers)
    {
        Config = cfg;
        NumExperts = cfg.NumRoutedExperts;
        ExpertLayout = Layout(cfg);
    }

    public override int NumExperts { get; }
    public override IExpertLayout ExpertLayout { get; }

    /// <summary>The routed experts' layout: SwiGLU gate_proj/up_proj/down_proj of width moe_intermediate_size.</summary>
    public static SwiGluExpertLayout Layout(DeepseekV3Config cfg) => new(cfg.HiddenSize, cfg.MoeIntermediateSize, SwiGluExpertLayout.ProjNames);

    /// <summary>RoPE over qk_rope_head_dim (interleaved pairs when rope_interleave): plain, or YaRN.</summary>
    public static RotaryEmbedding Rope(DeepseekV3Config cfg) => cfg.RopeScaling is { } s
        ? YarnRope.Create(cfg.QkRopeHeadDim, cfg.RopeTheta, s, cfg.RopeInterleave)
        : new RotaryEmbedding(cfg.QkRopeHeadDim, cfg.RopeTheta, cfg.RopeInterleave);

    /// <summary>
    /// Opens a Hugging Face DeepSeek-V3 / Kimi-K2 directory. <paramref name="expertFactory"/> supplies each sparse
    /// layer's routed experts (default: views of the checkpoint's experts).
    /// </summary>
    public static DeepseekV3Model Load(string dir, Func<DeepseekV3Layer, IExperts>? expertFactory = null)
    {
        var cfg = DeepseekV3Config.Load(dir);
        return TensorStore.OpenOwned(dir, store => new DeepseekV3Model(cfg, store, Rope(cfg), expertFactory), cfg.Fp8Block);
    }
}
