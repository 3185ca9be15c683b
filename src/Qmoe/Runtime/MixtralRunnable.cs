using Qmoe.Models.Mixtral;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>A Mixtral model with its tokenizer, behind <see cref="IRunnableModel"/>.</summary>
public sealed class MixtralRunnable(MixtralModel model, T5Tokenizer tokenizer) : IRunnableModel
{
    public MixtralModel Model { get; } = model;
    public string Family => "mixtral";
    public bool IsDecoderOnly => true;
    public int VocabSize => Model.Config.VocabSize;
    public T5Tokenizer Tokenizer { get; } = tokenizer;
    /// <summary>Mixtral has no expert capacity; the setting is accepted and ignored.</summary>
    public bool UseCapacity { get; set; }
    public EvalResult Evaluate(EvalSet set) => CausalEvaluator.Evaluate(Model, set);
    public int[] Generate(int[] inputIds, int maxNewTokens) => MixtralGenerator.Greedy(Model, inputIds, maxNewTokens);
    public void Dispose() => Model.Dispose();
}
