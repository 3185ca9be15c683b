using System.Diagnostics;
using Qmoe.Models.Switch;

namespace Qmoe.Runtime;

/// <summary>
/// Span-corruption loss of a Switch model: teacher-forced decoding with decoder input [start] + labels[:-1],
/// mean token cross-entropy over every label position of every example.
/// </summary>
public static class SwitchEvaluator
{
    public static EvalResult Evaluate(SwitchModel model, EvalSet set, int batchSize = 16)
    {
        var input = set.InputIds ?? throw new QmoeException($"split '{set.Split}' has no input_ids/labels (span-corruption data)");
        var labels = set.Labels!;
        var sw = Stopwatch.StartNew();
        double total = 0;
        long tokens = 0, processed = 0;
        int vocab = model.Config.VocabSize;
        for (int b0 = 0; b0 < input.Length; b0 += batchSize)
        {
            int n = Math.Min(batchSize, input.Length - b0);
            var enc = input[b0..(b0 + n)];
            var lab = labels[b0..(b0 + n)];
            var dec = lab.Select(l => DecoderInput(l, model.Config.DecoderStartTokenId)).ToArray();
            var logits = model.Forward(enc, dec);
            int row = 0;
            foreach (var l in lab)
                foreach (var target in l)
                {
                    total += CrossEntropy.Token(logits.AsSpan(row++ * vocab, vocab), target);
                    tokens++;
                }
            processed += enc.Sum(e => e.Length) + dec.Sum(d => d.Length);
        }
        double secs = sw.Elapsed.TotalSeconds;
        return new EvalResult(set.Split, input.Length, tokens, tokens > 0 ? total / tokens : double.NaN, secs)
        { TokensPerSecond = processed / Math.Max(secs, 1e-9) };
    }

    /// <summary>HF <c>_shift_right</c>: [decoder_start] + labels[:-1].</summary>
    public static int[] DecoderInput(int[] labels, int startToken)
    {
        var d = new int[labels.Length];
        d[0] = startToken;
        Array.Copy(labels, 0, d, 1, labels.Length - 1);
        return d;
    }
}
