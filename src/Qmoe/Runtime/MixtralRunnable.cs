using Qmoe.Models.Mixtral;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>A Mixtral model with its tokenizer (and, when compressed, the expert store it runs from), behind <see cref="IRunnableModel"/>.</summary>
public sealed class MixtralRunnable(MixtralModel model, T5Tokenizer tokenizer, IDisposable? experts = null) : IRunnableModel
{
    public MixtralModel Model { get; } = model;
    public string Family => "mixtral";
    public bool IsDecoderOnly => true;
    public int VocabSize => Model.Config.VocabSize;
    public ITokenizer Tokenizer { get; } = tokenizer;
    /// <summary>Mixtral has no expert capacity; the setting is accepted and ignored.</summary>
    public bool UseCapacity { get; set; }
    public EvalResult Evaluate(EvalSet set) => CausalEvaluator.Evaluate(Model, set);
    public int[] Generate(int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null) =>
        MixtralGenerator.Greedy(Model, inputIds, maxNewTokens, stopAtEos, forced);

    public IReadOnlyList<int> EosIds => new[] { Model.Config.EosTokenId };
    public IBatchDecoder? CreateBatchDecoder() => new MixtralBatchDecoder(Model);

    public void Dispose()
    {
        Model.Dispose();
        experts?.Dispose();
    }
}
