using Qmoe.Models.Switch;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>A Switch model with its tokenizer, behind <see cref="IRunnableModel"/>.</summary>
public sealed class SwitchRunnable(SwitchModel model, T5Tokenizer tokenizer) : IRunnableModel
{
    public SwitchModel Model { get; } = model;
    public string Family => "switch_transformers";
    public bool IsDecoderOnly => false;
    public int VocabSize => Model.Config.VocabSize;
    public T5Tokenizer Tokenizer { get; } = tokenizer;
    public bool UseCapacity { get => Model.UseCapacity; set => Model.UseCapacity = value; }
    public EvalResult Evaluate(EvalSet set) => SwitchEvaluator.Evaluate(Model, set);
    public int[] Generate(int[] inputIds, int maxNewTokens) => SwitchGenerator.Greedy(Model, inputIds, maxNewTokens);
    public void Dispose() => Model.Dispose();
}
