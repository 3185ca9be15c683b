using System.Diagnostics;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>A prompt run through greedy generation: ids in and out, decoded text, and speed.</summary>
public sealed record GenerationResult(int[] InputIds, int[] OutputIds, string Text, double TokensPerSecond);

public static class Generation
{
    /// <summary>Tokenises <paramref name="prompt"/> and decodes greedily; tokens/s counts new tokens over the whole call.</summary>
    public static GenerationResult Run(IRunnableModel model, string prompt, int maxNewTokens)
    {
        // Encoder-decoders take the prompt with eos (T5 convention); decoder-only models continue it, with a bos
        // where the tokenizer config adds one.
        bool decoderOnly = model.IsDecoderOnly;
        var input = PromptEncoding.Encode(model.Tokenizer, prompt, decoderOnly);
        var sw = Stopwatch.StartNew();
        var output = model.Generate(input, maxNewTokens);
        double secs = sw.Elapsed.TotalSeconds;
        int generated = decoderOnly ? output.Length - input.Length : output.Length - 1;
        return new GenerationResult(input, output, model.Tokenizer.DecodeGenerated(output), generated / Math.Max(secs, 1e-9));
    }
}
