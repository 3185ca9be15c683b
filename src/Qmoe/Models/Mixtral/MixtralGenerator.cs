using Qmoe.Models.Layers;
using Qmoe.Models.Switch;

namespace Qmoe.Models.Mixtral;

/// <summary>Greedy decoding with a KV cache: the prompt runs once, then one token per step.</summary>
public static class MixtralGenerator
{
    /// <summary>
    /// Returns prompt + generated ids, up to and including eos or <paramref name="maxNewTokens"/> new tokens
    /// (HF <c>generate</c> with greedy search; no bos is added). Generation stops at the context limit
    /// (<see cref="MixtralConfig.MaxContext"/>); a prompt beyond it is refused. Benchmarks pass <paramref name="stopAtEos"/> = false
    /// and may feed <paramref name="forced"/> tokens instead of the argmax (see <c>SwitchGenerator.Greedy</c>).
    /// </summary>
    public static int[] Greedy(MixtralModel model, int[] inputIds, int maxNewTokens, bool stopAtEos = true, int[]? forced = null)
    {
        if (inputIds.Length == 0) throw new QmoeException("generation needs a non-empty prompt (no bos token is added)");
        maxNewTokens = ClampToContext(model.Config, inputIds.Length, maxNewTokens);
        var caches = model.NewCaches(1, inputIds.Length + maxNewTokens);
        var output = new List<int>(inputIds);
        var next = inputIds;
        for (int step = 0; step < maxNewTokens; step++)
        {
            var h = model.ForwardHidden(new[] { next }, caches);
            int d = model.Config.HiddenSize;
            var logits = model.Logits(h[((next.Length - 1) * d)..], 1);
            int id = SwitchGenerator.ArgMax(logits);
            if (forced != null) id = forced[step % forced.Length];
            output.Add(id);
            if (stopAtEos && id == model.Config.EosTokenId) break;
            next = new[] { id };
        }
        return output.ToArray();
    }

    /// <summary>New tokens that fit after a prompt of <paramref name="promptLength"/> tokens in the context (at most
    /// <paramref name="maxNewTokens"/>); refuses a prompt that leaves no room or caches beyond memory.</summary>
    public static int ClampToContext(MixtralConfig cfg, int promptLength, int maxNewTokens)
    {
        if (maxNewTokens < 0) throw new QmoeException($"max new tokens {maxNewTokens} must not be negative");
        if (promptLength >= cfg.MaxContext)
            throw new QmoeException($"prompt of {promptLength} tokens leaves no room in the context of {cfg.MaxContext} tokens");
        int n = (int)Math.Min(maxNewTokens, (long)cfg.MaxContext - promptLength);
        KvCache.CheckBudget(cfg.NumLayers, cfg.KvWidth, promptLength + n);
        return n;
    }
}
