using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Qwen3Moe;

/// <summary>A Qwen3-MoE causal LM (HF <c>Qwen3MoeForCausalLM</c>) running from a memory-mapped checkpoint.</summary>
public sealed class Qwen3MoeModel : DecoderOnlyModel<Qwen3MoeLayer>
{
    public Qwen3MoeConfig Config { get; }

    private Qwen3MoeModel(Qwen3MoeConfig cfg, TensorStore store, RotaryEmbedding rope, Func<Qwen3MoeLayer, IExperts>? expertFactory)
        : base(store, cfg.VocabSize, cfg.HiddenSize, cfg.RmsNormEps, cfg.EosTokenIds,
               i => new Qwen3MoeLayer(store, cfg, i, rope, expertFactory), cfg.NumLayers)
    {
        Config = cfg;
        NumExperts = cfg.NumExperts;
        ExpertLayout = Layout(cfg);
    }

    public override int NumExperts { get; }
    public override IExpertLayout ExpertLayout { get; }

    /// <summary>The routed experts' layout: SwiGLU gate_proj/up_proj/down_proj of width moe_intermediate_size.</summary>
    public static SwiGluExpertLayout Layout(Qwen3MoeConfig cfg) => new(cfg.HiddenSize, cfg.MoeIntermediateSize, SwiGluExpertLayout.ProjNames);

    /// <summary>RoPE over head_dim: plain, or YaRN (HF's generic yarn: cos/sin scaled, softmax scale unchanged).</summary>
    public static RotaryEmbedding Rope(Qwen3MoeConfig cfg) => cfg.RopeScaling is { } s
        ? YarnRope.Create(cfg.HeadDim, cfg.RopeTheta, s, interleaved: false)
        : new RotaryEmbedding(cfg.HeadDim, cfg.RopeTheta);

    /// <summary>
    /// Opens a Hugging Face Qwen3-MoE directory. <paramref name="expertFactory"/> supplies each sparse layer's
    /// experts (default: views of the checkpoint's experts).
    /// </summary>
    public static Qwen3MoeModel Load(string dir, Func<Qwen3MoeLayer, IExperts>? expertFactory = null)
    {
        var cfg = Qwen3MoeConfig.Load(dir);
        return TensorStore.OpenOwned(dir, store => new Qwen3MoeModel(cfg, store, Rope(cfg), expertFactory), cfg.Fp8Block);
    }
}
