using Qmoe.Models.Switch;

namespace Qmoe.Models.DecoderOnly;

/// <summary>Greedy decoding of a decoder-only model with a KV cache: the prompt runs once, then one token per step.</summary>
public static class DecoderOnlyGenerator
{
    /// <summary>
    /// Returns prompt + generated ids, up to and including eos or <paramref name="maxNewTokens"/> new tokens
    /// (HF <c>generate</c> with greedy search; no bos is added). Benchmarks pass <paramref name="stopAtEos"/> = false
    /// and may feed <paramref name="forced"/> tokens instead of the argmax (see <c>SwitchGenerator.Greedy</c>).
    /// </summary>
    public static int[] Greedy(IDecoderOnlyModel model, int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null)
    {
        if (inputIds.Length == 0) throw new QmoeException("generation needs a non-empty prompt (no bos token is added)");
        var caches = model.NewCaches(1, inputIds.Length + maxNewTokens);
        var output = new List<int>(inputIds);
        var next = inputIds;
        for (int step = 0; step < maxNewTokens; step++)
        {
            var h = model.ForwardHidden(new[] { next }, caches);
            int d = model.HiddenSize;
            var logits = model.Logits(h[((next.Length - 1) * d)..], 1);
            int id = SwitchGenerator.ArgMax(logits);
            if (forced != null) id = forced[step % forced.Length];
            output.Add(id);
            if (stopAtEos && id == model.EosTokenId) break;
            next = new[] { id };
        }
        return output.ToArray();
    }
}
