using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Models.Moe;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Models;

/// <summary>How a family's calibration samples are built from text or a token file (SPEC §4).</summary>
public enum CalibrationKind
{
    /// <summary>Span-corrupted encoder inputs with teacher-forced decoder inputs (encoder-decoders; <c>--premask</c> applies).</summary>
    SpanCorruption,
    /// <summary>Plain causal token blocks (decoder-only models; a token file's <c>S.raw_blocks</c>).</summary>
    CausalBlocks,
}

/// <summary>The sizes family-independent code needs from a validated config.</summary>
/// <param name="VocabSize">Token ids are below this.</param>
/// <param name="NumExperts">Routed experts per sparse layer.</param>
/// <param name="SparseLayers">Layers with routed experts (0: nothing to compress).</param>
public sealed record ModelSummary(int VocabSize, int NumExperts, int SparseLayers);

/// <summary>Builds a sparse layer's experts (by its tensor prefix and expert count), e.g. running from compressed codes.</summary>
public delegate IExperts ExpertFactory(string prefix, int count);

/// <summary>
/// One model family (a config.json <c>model_type</c>): everything the loader, the compression pipeline, the
/// calibration loader and <c>synth</c> need to know about it. A family lives in its folder under
/// <c>Models/</c> and is listed once in <see cref="ModelFamilies"/> (SPEC "Model families").
/// </summary>
public interface IModelFamily
{
    /// <summary>config.json's <c>model_type</c>, e.g. "mixtral".</summary>
    string ModelType { get; }
    CalibrationKind Calibration { get; }
    /// <summary>Parses and validates the config (one-line errors naming the field); returns its sizes.</summary>
    ModelSummary Validate(ConfigReader config);
    /// <summary>The routed experts' matrices, their quantization order, tensor names and how to run them.</summary>
    IExpertLayout ExpertLayout(ConfigReader config);
    /// <summary>
    /// The family's tokenizer from the files in <paramref name="dir"/>; every id it produces must be below
    /// <paramref name="embeddingRows"/> (the model's vocab_size) when given.
    /// </summary>
    ITokenizer LoadTokenizer(string dir, int? embeddingRows);
    /// <summary>The model's tokenizer, checked against its validated config's vocabulary.</summary>
    ITokenizer LoadTokenizer(string dir, ConfigReader config) => LoadTokenizer(dir, Validate(config).VocabSize);
    /// <summary>
    /// Opens the model in <paramref name="dir"/> for inference with its dense experts, or (with
    /// <paramref name="experts"/>) with every sparse layer's experts from that factory; the result owns
    /// <paramref name="owned"/> (the compressed expert store) and disposes it.
    /// </summary>
    IRunnableModel Open(string dir, ConfigReader config, ExpertFactory? experts = null, IDisposable? owned = null);
    /// <summary>Opens the model in <paramref name="dir"/> as the blocks the sequential compressor walks.</summary>
    ICompressibleModel OpenForCompression(string dir);
    /// <summary><c>synth --shape</c> presets of this family by name (the real models' exact shapes).</summary>
    IReadOnlyDictionary<string, SynthShape> SynthPresets { get; }
    /// <summary>The HF config.json of a synthetic checkpoint of this family.</summary>
    JsonObject SynthConfig(SynthShape shape);
    /// <summary>A synthetic checkpoint's tensors in HF naming and order.</summary>
    IEnumerable<SynthTensor> SynthTensors(SynthShape shape);
}
