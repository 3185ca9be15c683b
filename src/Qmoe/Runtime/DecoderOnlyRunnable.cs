using Qmoe.Models.DecoderOnly;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>
/// A decoder-only model of any family with its tokenizer (and, when compressed, the expert store it runs from),
/// behind <see cref="IRunnableModel"/>: next-token eval on raw blocks, greedy generation with a KV cache.
/// </summary>
public sealed class DecoderOnlyRunnable(IDecoderOnlyModel model, string family, ITokenizer tokenizer, IDisposable? experts = null) : IRunnableModel
{
    public IDecoderOnlyModel Model { get; } = model;
    public string Family => family;
    public bool IsDecoderOnly => true;
    public int VocabSize => Model.VocabSize;
    public ITokenizer Tokenizer { get; } = tokenizer;
    /// <summary>Decoder-only MoEs have no expert capacity; the setting is accepted and ignored.</summary>
    public bool UseCapacity { get; set; }
    public EvalResult Evaluate(EvalSet set) => CausalEvaluator.Evaluate(Model, set);
    public int[] Generate(int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null) =>
        DecoderOnlyGenerator.Greedy(Model, inputIds, maxNewTokens, stopAtEos, forced, StopIds);

    /// <summary>Ids that end generation: config.json's eos and every eos of the tokenizer (generation_config.json's list).</summary>
    private int[] StopIds => field ??= [.. Tokenizer.Special.Eos.Concat(Model.EosTokenIds).Distinct()];

    public float[] NextTokenLogits(int[] inputIds, int[] continuation) => DecoderOnlyGenerator.NextTokenLogits(Model, inputIds, continuation);

    public void Dispose()
    {
        Model.Dispose();
        experts?.Dispose();
    }
}
