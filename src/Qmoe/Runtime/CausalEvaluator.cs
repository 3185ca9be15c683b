using System.Diagnostics;
using Qmoe.Models.DecoderOnly;

namespace Qmoe.Runtime;

/// <summary>
/// Next-token loss of a decoder-only model on raw blocks: logits of positions 0..L-2 predict tokens 1..L-1;
/// mean CE per block, then over blocks (the fixtures' blocks have equal length, so this is the token mean).
/// </summary>
public static class CausalEvaluator
{
    public static EvalResult Evaluate(IDecoderOnlyModel model, EvalSet set, int batchSize = 8)
    {
        var blocks = set.RawBlocks ?? throw new QmoeException($"split '{set.Split}' has no raw_blocks (causal LM data)");
        var sw = Stopwatch.StartNew();
        double sumOfMeans = 0;
        long tokens = 0, processed = 0;
        int vocab = model.VocabSize;
        for (int b0 = 0; b0 < blocks.Length; b0 += batchSize)
        {
            var batch = blocks[b0..Math.Min(blocks.Length, b0 + batchSize)];
            foreach (var b in batch)
                if (b.Length < 2) throw new QmoeException($"split '{set.Split}': a raw block needs at least 2 tokens");
            var logits = model.Forward(batch);
            int row = 0;
            foreach (var b in batch)
            {
                double sum = 0;
                for (int t = 0; t < b.Length - 1; t++)
                    sum += CrossEntropy.Token(logits.AsSpan((row + t) * vocab, vocab), b[t + 1]);
                sumOfMeans += sum / (b.Length - 1);
                tokens += b.Length - 1;
                row += b.Length;
            }
            processed += batch.Sum(b => b.Length);
        }
        double secs = sw.Elapsed.TotalSeconds;
        return new EvalResult(set.Split, blocks.Length, tokens, blocks.Length > 0 ? sumOfMeans / blocks.Length : double.NaN, secs)
        { TokensPerSecond = processed / Math.Max(secs, 1e-9) };
    }
}
