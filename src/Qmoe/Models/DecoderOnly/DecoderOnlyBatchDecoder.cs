using Qmoe.Models.Layers;
using Qmoe.Runtime;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// <see cref="IBatchDecoder"/> for every decoder-only family: a sequence's state is one KV cache per layer; a step
/// hands the model the caches as [layer][sequence] and one token per sequence (<see cref="IDecoderOnlyModel.ForwardHidden"/>),
/// so a family gets continuous batching from its layer code alone.
/// </summary>
public sealed class DecoderOnlyBatchDecoder(IDecoderOnlyModel model) : IBatchDecoder
{
    private sealed class State(KvCache[] caches) : IDecodeState
    {
        public KvCache[] Caches { get; } = caches; // [layer]
        public int Length => Caches.Length == 0 ? 0 : Caches[0].Length;
    }

    public int VocabSize => model.VocabSize;

    public int ClampNewTokens(int promptLength, int requested) => DecoderOnlyGenerator.ClampToContext(model, promptLength, requested);

    public IDecodeState Start() => new State(model.NewCaches(1).Select(l => l[0]).ToArray());

    public float[] Prefill(IDecodeState state, int[] prompt)
    {
        if (prompt.Length == 0) throw new QmoeException("generation needs a non-empty prompt (no bos token is added)");
        var h = model.ForwardHidden(new[] { prompt }, CachesOf(new[] { state }));
        int d = model.HiddenSize;
        return model.Logits(h[((prompt.Length - 1) * d)..], 1);
    }

    public float[] Step(IReadOnlyList<IDecodeState> states, ReadOnlySpan<int> tokens)
    {
        if (tokens.Length != states.Count) throw new ArgumentException("one token per sequence");
        var batch = new int[states.Count][];
        for (int s = 0; s < batch.Length; s++) batch[s] = new[] { tokens[s] };
        var h = model.ForwardHidden(batch, CachesOf(states));
        return model.Logits(h, batch.Length);
    }

    private KvCache[][] CachesOf(IReadOnlyList<IDecodeState> states) =>
        Enumerable.Range(0, model.Layers.Count).Select(l => states.Select(s => ((State)s).Caches[l]).ToArray()).ToArray();
}
