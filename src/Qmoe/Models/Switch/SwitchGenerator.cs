namespace Qmoe.Models.Switch;

/// <summary>Greedy decoding with a KV cache: the encoder runs once, then one decoder token per step.</summary>
public static class SwitchGenerator
{
    /// <summary>
    /// Returns the decoder ids, starting with decoder_start_token_id, up to and including eos or
    /// <paramref name="maxNewTokens"/> new tokens (HF <c>generate</c> with greedy search). Benchmarks pass
    /// <paramref name="stopAtEos"/> = false to always decode <paramref name="maxNewTokens"/> tokens, and may pass
    /// <paramref name="forced"/> tokens to feed instead of the argmax (same work per step, but real text routes to
    /// varied experts, where a random model's greedy output repeats one token and keeps one expert in cache).
    /// <paramref name="eosIds"/>, when given, lists every id that ends generation (default: config.json's eos_token_id).
    /// </summary>
    public static int[] Greedy(SwitchModel model, int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null,
        IReadOnlyCollection<int>? eosIds = null)
    {
        var cfg = model.Config;
        var enc = model.Encode(new[] { inputIds });
        var state = model.StartDecoder(enc, new Layers.SequenceBatch(new[] { inputIds.Length }));
        var output = new List<int> { cfg.DecoderStartTokenId };
        for (int step = 0; step < maxNewTokens; step++)
        {
            var h = model.DecodeHidden(new[] { new[] { output[^1] } }, state);
            var logits = model.Logits(h, 1);
            int next = ArgMax(logits);
            if (forced != null) next = forced[step % forced.Length];
            output.Add(next);
            if (stopAtEos && (eosIds?.Contains(next) ?? next == cfg.EosTokenId)) break;
        }
        return output.ToArray();
    }

    /// <summary>Logits [vocab] after decoder ids <paramref name="decoderIds"/> (non-empty, starting with decoder_start) for encoder input <paramref name="inputIds"/>.</summary>
    public static float[] NextTokenLogits(SwitchModel model, int[] inputIds, int[] decoderIds)
    {
        if (decoderIds.Length == 0) throw new QmoeException("next-token logits need at least the decoder start token");
        var enc = model.Encode(new[] { inputIds });
        var state = model.StartDecoder(enc, new Layers.SequenceBatch(new[] { inputIds.Length }));
        var h = model.DecodeHidden(new[] { decoderIds }, state);
        int d = model.Config.DModel;
        return model.Logits(h[((decoderIds.Length - 1) * d)..], 1);
    }

    /// <summary>Index of the largest value; the first one on ties (as torch.argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }
}
