using Qmoe.Models.DeepseekV3;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Qwen3Moe;
using Qmoe.Models.Switch;

namespace Qmoe.Models;

/// <summary>The registry of model families by config.json <c>model_type</c>. A new family is one line here.</summary>
public static class ModelFamilies
{
    public static IReadOnlyList<IModelFamily> All { get; } =
    [
        new SwitchFamily(),
        new MixtralFamily(),
        new Qwen3MoeFamily(),
        new DeepseekV3Family("deepseek_v3"),
        new DeepseekV3Family("kimi_k2"),
    ];

    /// <summary>The family of a config, or a one-line error naming the model_type and the supported ones.</summary>
    public static IModelFamily For(ConfigReader config) =>
        All.FirstOrDefault(f => f.ModelType == config.ModelType)
        ?? throw new QmoeException($"{config.Path}: model_type '{config.ModelType}' is not supported ({string.Join(", ", All.Select(f => f.ModelType))})");

    /// <summary>The family named <paramref name="modelType"/>.</summary>
    public static IModelFamily Named(string modelType) =>
        All.FirstOrDefault(f => f.ModelType == modelType)
        ?? throw new QmoeException($"unknown model family '{modelType}' ({string.Join(", ", All.Select(f => f.ModelType))})");

    /// <summary>All families' <c>synth --shape</c> presets.</summary>
    public static IEnumerable<string> SynthPresetNames => All.SelectMany(f => f.SynthPresets.Keys);

    public static SynthShape SynthPreset(string name) =>
        All.Select(f => f.SynthPresets.GetValueOrDefault(name)).FirstOrDefault(s => s != null)
        ?? throw new QmoeException($"--shape {name}: unknown shape ({string.Join(", ", SynthPresetNames)})");
}
