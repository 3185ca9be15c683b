using System.Text.Json.Nodes;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>Mixtral (<c>mixtral</c>, HF <c>MixtralForCausalLM</c>): a decoder-only MoE with SwiGLU experts, top-k softmax routing.</summary>
public sealed class MixtralFamily : DecoderOnlyFamily
{
    public const string Type = "mixtral";

    public override string ModelType => Type;

    public override ModelSummary Validate(ConfigReader config)
    {
        var c = MixtralConfig.From(config);
        return new ModelSummary(c.VocabSize, c.NumExperts, c.NumLayers);
    }

    public override IExpertLayout ExpertLayout(ConfigReader config)
    {
        var c = MixtralConfig.From(config);
        return new SwiGluExpertLayout(c.HiddenSize, c.IntermediateSize, SwiGluExpertLayout.MixtralNames);
    }

    protected override IDecoderOnlyModel Load(string dir, ExpertFactory? experts)
    {
        int count = MixtralConfig.Load(dir).NumExperts;
        return MixtralModel.Load(dir, experts == null ? null : layer => experts(layer.MoePrefix!, count));
    }

    public override IReadOnlyDictionary<string, SynthShape> SynthPresets { get; } =
        new Dictionary<string, SynthShape> { ["mixtral-8x7b"] = MixtralSynth.Mixtral8x7b };
    public override JsonObject SynthConfig(SynthShape shape) => MixtralSynth.Config(shape);
    public override IEnumerable<SynthTensor> SynthTensors(SynthShape shape) => MixtralSynth.Tensors(shape);
}
