using Qmoe.Models.Switch;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>A Switch model with its tokenizer (and, when compressed, the expert store it runs from), behind <see cref="IRunnableModel"/>.</summary>
public sealed class SwitchRunnable(SwitchModel model, ITokenizer tokenizer, IDisposable? experts = null) : IRunnableModel
{
    public SwitchModel Model { get; } = model;
    public string Family => SwitchFamily.Type;
    public bool IsDecoderOnly => false;
    public int VocabSize => Model.Config.VocabSize;
    public ITokenizer Tokenizer { get; } = tokenizer;
    public bool UseCapacity { get => Model.UseCapacity; set => Model.UseCapacity = value; }
    public EvalResult Evaluate(EvalSet set) => SwitchEvaluator.Evaluate(Model, set);
    public int[] Generate(int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null) =>
        SwitchGenerator.Greedy(Model, inputIds, maxNewTokens, stopAtEos, forced, StopIds);

    /// <summary>Ids that end generation: config.json's eos and every eos of the tokenizer (generation_config.json's list).</summary>
    private int[] StopIds => field ??= [.. Tokenizer.Special.Eos.Append(Model.Config.EosTokenId).Distinct()];

    public float[] NextTokenLogits(int[] inputIds, int[] continuation) => SwitchGenerator.NextTokenLogits(Model, inputIds, continuation);

    public void Dispose()
    {
        Model.Dispose();
        experts?.Dispose();
    }
}
