using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>What the eval/generate/bench verbs need of a model, whatever its family and storage (dense or compressed).</summary>
public interface IRunnableModel : IDisposable
{
    /// <summary>The family's config.json model_type, e.g. "switch_transformers", "mixtral" (see <c>ModelFamilies</c>).</summary>
    string Family { get; }
    int VocabSize { get; }
    /// <summary>Decoder-only (causal LM: prompts without eos, raw-block eval) rather than encoder-decoder.</summary>
    bool IsDecoderOnly { get; }
    ITokenizer Tokenizer { get; }
    /// <summary>Apply the config's expert capacity (Switch); false = unlimited.</summary>
    bool UseCapacity { get; set; }
    /// <summary>Mean CE on a split (span corruption for encoder-decoders, next-token for decoder-only).</summary>
    EvalResult Evaluate(EvalSet set);
    /// <summary>Greedy decoding; returns the generated ids (Switch: starting with decoder_start). Without
    /// <paramref name="stopAtEos"/> it always decodes <paramref name="maxNewTokens"/> tokens; <paramref name="forced"/>
    /// tokens, when given, are fed instead of the argmax (benchmarks: same work per step, realistic routing).</summary>
    int[] Generate(int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null);
    /// <summary>Logits [vocab] of the token after <paramref name="continuation"/>: for encoder-decoders the decoder ids
    /// so far (starting with decoder_start, as <see cref="Generate"/> returns them) given encoder input
    /// <paramref name="inputIds"/>; for decoder-only models the tokens after the prompt <paramref name="inputIds"/>.</summary>
    float[] NextTokenLogits(int[] inputIds, int[] continuation);
}
