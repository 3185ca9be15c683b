using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>
/// How a model's input text becomes ids, as transformers does with <c>add_special_tokens=True</c>: encoder-decoders
/// take the tokenizer's special tokens (T5: eos appended); decoder-only models take them only where they are a
/// leading bos (Llama/Mistral/DeepSeek configs; a tokenizer that would append eos, such as a T5 vocabulary under a
/// decoder-only model, adds nothing: the model continues the text).
/// </summary>
public static class PromptEncoding
{
    public static int[] Encode(ITokenizer tokenizer, string text, bool decoderOnly) =>
        tokenizer.Encode(text, addSpecialTokens: !decoderOnly || AddsOnlyBos(tokenizer));

    /// <summary>True when encoding with special tokens adds exactly a leading bos (and nothing after the text).</summary>
    public static bool AddsOnlyBos(ITokenizer tokenizer)
    {
        if (tokenizer.Special.Bos is not int bos) return false;
        int[] plain = tokenizer.Encode("a", addSpecialTokens: false), special = tokenizer.Encode("a", addSpecialTokens: true);
        return special.Length == plain.Length + 1 && special[0] == bos && special.AsSpan(1).SequenceEqual(plain);
    }
}
