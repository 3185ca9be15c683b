using System.Text.Json.Nodes;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Moe;
using Qmoe.Text;

namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// DeepSeek-V3 (<c>deepseek_v3</c>) and Kimi-K2 (<c>kimi_k2</c>), HF <c>DeepseekV3ForCausalLM</c>: MLA attention,
/// group-limited sigmoid routing with shared experts, dense first layers, YaRN, FP8 checkpoints.
/// </summary>
public sealed class DeepseekV3Family(string modelType) : DecoderOnlyFamily
{
    public override string ModelType => modelType;

    private static DeepseekV3Config Parse(ConfigReader config) => DeepseekV3Config.From(config, Path.GetDirectoryName(config.Path) ?? "");

    public override ModelSummary Validate(ConfigReader config)
    {
        var c = Parse(config);
        return new ModelSummary(c.VocabSize, c.NumRoutedExperts, Enumerable.Range(0, c.NumLayers).Count(c.IsSparse));
    }

    public override IExpertLayout ExpertLayout(ConfigReader config) => DeepseekV3Model.Layout(Parse(config));

    protected override IDecoderOnlyModel Load(string dir, ExpertFactory? experts) =>
        DeepseekV3Model.Load(dir, experts == null ? null : layer => experts(layer.MoePrefix!, layer.Router!.NumExperts));

    /// <summary>The presets of this model_type: deepseek-v3 for deepseek_v3, kimi-k2 for kimi_k2.</summary>
    public override IReadOnlyDictionary<string, SynthShape> SynthPresets => modelType switch
    {
        "deepseek_v3" => new Dictionary<string, SynthShape>
        {
            ["deepseek-v3"] = new()
            {
                Family = modelType, Preset = "deepseek-v3", VocabSize = 129280, Hidden = 7168, Ffn = 2048, Layers = 61, Heads = 128,
                HeadDim = 192, Experts = 256, TopK = 8,
            },
        },
        "kimi_k2" => new Dictionary<string, SynthShape>
        {
            ["kimi-k2"] = new()
            {
                Family = modelType, Preset = "kimi-k2", VocabSize = 163840, Hidden = 7168, Ffn = 2048, Layers = 61, Heads = 64,
                HeadDim = 192, Experts = 384, TopK = 8,
            },
        },
        _ => new Dictionary<string, SynthShape>(),
    };

    public override JsonObject SynthConfig(SynthShape shape)
    {
        var preset = shape.Preset switch
        {
            "deepseek-v3" => DeepseekV3Synth.DeepseekV3(),
            "kimi-k2" => DeepseekV3Synth.KimiK2(),
            _ => throw new QmoeException($"{modelType} synth needs a preset (deepseek-v3, kimi-k2)"),
        };
        var full = SynthPresets[shape.Preset];
        return DeepseekV3Synth.Slice(preset, shape.Layers != full.Layers ? shape.Layers : null, shape.Experts != full.Experts ? shape.Experts : null);
    }

    public override IEnumerable<SynthTensor> SynthTensors(SynthShape shape) =>
        DeepseekV3Synth.Tensors(DeepseekV3Config.From(ConfigReader.FromJson(SynthConfig(shape), $"synth {shape.Preset}"), ""));
}
