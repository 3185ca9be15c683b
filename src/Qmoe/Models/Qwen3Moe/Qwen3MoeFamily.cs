using System.Text.Json.Nodes;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Moe;
using Qmoe.Text;

namespace Qmoe.Models.Qwen3Moe;

/// <summary>Qwen3-MoE (<c>qwen3_moe</c>, HF <c>Qwen3MoeForCausalLM</c>): q/k-normed GQA, softmax top-k routing, SwiGLU experts.</summary>
public sealed class Qwen3MoeFamily : DecoderOnlyFamily
{
    public const string Type = "qwen3_moe";

    public override string ModelType => Type;

    private static Qwen3MoeConfig Parse(ConfigReader config) => Qwen3MoeConfig.From(config, Path.GetDirectoryName(config.Path) ?? "");

    public override ModelSummary Validate(ConfigReader config)
    {
        var c = Parse(config);
        return new ModelSummary(c.VocabSize, c.NumExperts, Enumerable.Range(0, c.NumLayers).Count(c.IsSparse));
    }

    public override IExpertLayout ExpertLayout(ConfigReader config) => Qwen3MoeModel.Layout(Parse(config));

    protected override IDecoderOnlyModel Load(string dir, ExpertFactory? experts) =>
        Qwen3MoeModel.Load(dir, experts == null ? null : layer => experts(layer.MoePrefix!, layer.Router!.NumExperts));

    public override IReadOnlyDictionary<string, SynthShape> SynthPresets { get; } = new Dictionary<string, SynthShape>
    {
        ["qwen3-30b-a3b"] = new()
        {
            Family = Type, Preset = "qwen3-30b-a3b", VocabSize = 151936, Hidden = 2048, Ffn = 768, Layers = 48, Heads = 32,
            KvHeads = 4, HeadDim = 128, Experts = 128, TopK = 8,
        },
    };

    public override JsonObject SynthConfig(SynthShape shape)
    {
        var preset = shape.Preset == "qwen3-30b-a3b" ? Qwen3MoeSynth.Qwen3_30B_A3B()
            : throw new QmoeException($"qwen3_moe synth needs a preset ({string.Join(", ", SynthPresets.Keys)})");
        var full = SynthPresets[shape.Preset];
        return Qwen3MoeSynth.Slice(preset, shape.Layers != full.Layers ? shape.Layers : null, shape.Experts != full.Experts ? shape.Experts : null);
    }

    public override IEnumerable<SynthTensor> SynthTensors(SynthShape shape) =>
        Qwen3MoeSynth.Tensors(Qwen3MoeConfig.From(ConfigReader.FromJson(SynthConfig(shape), $"synth {shape.Preset}"), ""));
}
