using Qmoe.Runtime;

namespace Qmoe.Tests.Server;

/// <summary>What <c>generate</c> produces for a prompt (greedy, one request at a time): the new ids, eos dropped, and their text.</summary>
public static class GreedyReference
{
    public static int[] NewIds(IRunnableModel model, int[] promptIds, int maxNewTokens)
    {
        var output = model.Generate(promptIds, maxNewTokens);
        var generated = model.IsDecoderOnly ? output[promptIds.Length..] : output[1..];
        return generated.Length > 0 && model.EosIds.Contains(generated[^1]) ? generated[..^1] : generated;
    }

    /// <summary>The text <c>generate --prompt</c> continues a completion prompt with.</summary>
    public static string Completion(IRunnableModel model, string prompt, int maxNewTokens) =>
        model.Tokenizer.Decode(NewIds(model, model.Tokenizer.Encode(prompt, addSpecialTokens: !model.IsDecoderOnly), maxNewTokens));
}
