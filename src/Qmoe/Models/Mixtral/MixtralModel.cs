using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>
/// A Mixtral decoder-only MoE (HF <c>MixtralForCausalLM</c>) running from a memory-mapped checkpoint. Weights
/// stay in the file's dtype; only norms are copied. Activations are f32.
/// </summary>
public sealed class MixtralModel : DecoderOnlyModel<MixtralLayer>
{
    public MixtralConfig Config { get; }
    public override int NumExperts => Config.NumExperts;
    public override IExpertLayout ExpertLayout { get; }
    public override void CheckLength(int length) => Config.CheckLength(length);
    public override int MaxContext => Config.MaxContext;

    private MixtralModel(MixtralConfig cfg, TensorStore store, RotaryEmbedding rope, Func<MixtralLayer, IExperts>? expertFactory)
        : base(store, cfg.VocabSize, cfg.HiddenSize, cfg.RmsNormEps, [cfg.EosTokenId],
               i => new MixtralLayer(store, cfg, i, rope, expertFactory), cfg.NumLayers)
    {
        Config = cfg;
        ExpertLayout = new SwiGluExpertLayout(cfg.HiddenSize, cfg.IntermediateSize, SwiGluExpertLayout.MixtralNames);
    }

    /// <summary>
    /// Opens a Hugging Face Mixtral directory. <paramref name="expertFactory"/> supplies each layer's experts
    /// (default: views of the checkpoint's dense experts).
    /// </summary>
    public static MixtralModel Load(string dir, Func<MixtralLayer, IExperts>? expertFactory = null)
    {
        var cfg = MixtralConfig.Load(dir);
        return TensorStore.OpenOwned(dir, store => new MixtralModel(cfg, store, new RotaryEmbedding(cfg.HeadDim, cfg.RopeTheta), expertFactory));
    }
}
