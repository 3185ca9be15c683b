using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Models.Moe;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Models.Switch;

/// <summary>Switch Transformers (<c>switch_transformers</c>, HF <c>SwitchTransformersForConditionalGeneration</c>): an encoder-decoder.</summary>
public sealed class SwitchFamily : IModelFamily
{
    public const string Type = "switch_transformers";

    public string ModelType => Type;
    public CalibrationKind Calibration => CalibrationKind.SpanCorruption;

    public ModelSummary Validate(ConfigReader config)
    {
        var c = SwitchConfig.From(config);
        return new ModelSummary(c.VocabSize, c.NumExperts, c.NumSparseEncoderLayers + c.NumSparseDecoderLayers);
    }

    public IExpertLayout ExpertLayout(ConfigReader config)
    {
        var c = SwitchConfig.From(config);
        return new SwitchExpertLayout(c.DModel, c.DFf);
    }

    /// <summary>The T5 tokenizer: spiece.model and its 100 sentinels.</summary>
    public ITokenizer LoadTokenizer(string dir, int? embeddingRows) => TokenizerLoader.LoadT5(dir, embeddingRows);

    public IRunnableModel Open(string dir, ConfigReader config, ExpertFactory? experts = null, IDisposable? owned = null)
    {
        var cfg = SwitchConfig.From(config);
        int count = cfg.NumExperts;
        var tokenizer = LoadTokenizer(dir, cfg.VocabSize);
        var model = SwitchModel.Load(dir, experts == null ? null : block => experts(block.MlpPrefix, count));
        return new SwitchRunnable(model, tokenizer, owned);
    }

    public ICompressibleModel OpenForCompression(string dir)
    {
        var model = SwitchModel.Load(dir);
        try { return new SwitchCompressible(model); }
        catch { model.Dispose(); throw; }
    }

    public IReadOnlyDictionary<string, SynthShape> SynthPresets { get; } = new Dictionary<string, SynthShape>
    {
        ["switch-base-128"] = SwitchSynth.Base128,
        ["switch-c-2048"] = SwitchSynth.C2048,
    };
    public JsonObject SynthConfig(SynthShape shape) => SwitchSynth.Config(shape);
    public IEnumerable<SynthTensor> SynthTensors(SynthShape shape) => SwitchSynth.Tensors(shape);
}
