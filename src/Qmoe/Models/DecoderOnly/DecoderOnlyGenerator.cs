using Qmoe.Models.Switch;

namespace Qmoe.Models.DecoderOnly;

/// <summary>Greedy decoding of a decoder-only model with a KV cache: the prompt runs once, then one token per step.</summary>
public static class DecoderOnlyGenerator
{
    /// <summary>
    /// Returns prompt + generated ids, up to and including eos or <paramref name="maxNewTokens"/> new tokens
    /// (HF <c>generate</c> with greedy search; no bos is added). Benchmarks pass <paramref name="stopAtEos"/> = false
    /// and may feed <paramref name="forced"/> tokens instead of the argmax (see <c>SwitchGenerator.Greedy</c>).
    /// <paramref name="eosIds"/>, when given, lists every id that ends generation (default: the model's <see cref="IDecoderOnlyModel.EosTokenIds"/>).
    /// </summary>
    public static int[] Greedy(IDecoderOnlyModel model, int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null,
        IReadOnlyCollection<int>? eosIds = null)
    {
        if (inputIds.Length == 0) throw new QmoeException("generation needs a non-empty prompt (no bos token is added)");
        var caches = model.NewCaches(1, inputIds.Length + maxNewTokens);
        var output = new List<int>(inputIds);
        var next = inputIds;
        int d = model.HiddenSize;
        for (int step = 0; step < maxNewTokens; step++)
        {
            var h = model.ForwardHidden(new[] { next }, caches);
            var logits = model.Logits(h[((next.Length - 1) * d)..], 1);
            int id = SwitchGenerator.ArgMax(logits);
            if (forced != null) id = forced[step % forced.Length];
            output.Add(id);
            if (stopAtEos && (eosIds ?? model.EosTokenIds).Contains(id)) break;
            next = new[] { id };
        }
        return output.ToArray();
    }

    /// <summary>Logits [vocab] of the token after prompt <paramref name="inputIds"/> followed by <paramref name="continuation"/>.</summary>
    public static float[] NextTokenLogits(IDecoderOnlyModel model, int[] inputIds, int[] continuation)
    {
        int[] ids = [.. inputIds, .. continuation];
        if (ids.Length == 0) throw new QmoeException("next-token logits need a non-empty prompt (no bos token is added)");
        var h = model.ForwardHidden(new[] { ids }, model.NewCaches(1, ids.Length));
        int d = model.HiddenSize;
        return model.Logits(h[((ids.Length - 1) * d)..], 1);
    }
}
