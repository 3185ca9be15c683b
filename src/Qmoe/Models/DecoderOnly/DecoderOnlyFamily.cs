using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Models.Moe;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// The common part of every decoder-only MoE family: causal-block calibration, the shared runtime
/// (<see cref="DecoderOnlyRunnable"/>: eval, greedy generation) and the shared compressor walk
/// (<see cref="DecoderOnlyCompressible"/>). A family supplies its config, expert layout, model loading
/// (its layers' forward and routing) and synth shapes.
/// </summary>
public abstract class DecoderOnlyFamily : IModelFamily
{
    public abstract string ModelType { get; }
    public CalibrationKind Calibration => CalibrationKind.CausalBlocks;
    public abstract ModelSummary Validate(ConfigReader config);
    public abstract IExpertLayout ExpertLayout(ConfigReader config);

    /// <summary>Opens the checkpoint in <paramref name="dir"/>; <paramref name="experts"/>, when given, supplies every sparse layer's experts.</summary>
    protected abstract IDecoderOnlyModel Load(string dir, ExpertFactory? experts);

    /// <summary>The checkpoint's own tokenizer files, in Hugging Face's order (<see cref="TokenizerLoader.Load"/>).</summary>
    public ITokenizer LoadTokenizer(string dir, int? embeddingRows) => TokenizerLoader.Load(dir, embeddingRows);

    public IRunnableModel Open(string dir, ConfigReader config, ExpertFactory? experts = null, IDisposable? owned = null)
    {
        var tokenizer = LoadTokenizer(dir, Validate(config).VocabSize);
        return new DecoderOnlyRunnable(Load(dir, experts), ModelType, tokenizer, owned);
    }

    public ICompressibleModel OpenForCompression(string dir) => new DecoderOnlyCompressible(Load(dir, experts: null));

    public abstract IReadOnlyDictionary<string, SynthShape> SynthPresets { get; }
    public abstract JsonObject SynthConfig(SynthShape shape);
    public abstract IEnumerable<SynthTensor> SynthTensors(SynthShape shape);
}
