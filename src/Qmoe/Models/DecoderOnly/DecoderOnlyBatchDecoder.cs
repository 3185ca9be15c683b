using Qmoe.Models.Layers;
using Qmoe.Runtime;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// <see cref="IBatchDecoder"/> for every decoder-only family: a sequence's state is one KV cache per layer; a step
/// hands the model the caches as [layer][sequence] and one token per sequence (<see cref="IDecoderOnlyModel.ForwardHidden"/>),
/// so a family gets continuous batching from its layer code alone.
/// A step splits the sequences into chunks of at most <see cref="Numerics.MatMul.DotPathMaxRows"/> and runs the chunks
/// in parallel, each alone on its thread (<see cref="Threads.ForEachAlone"/>): every product then has at most that
/// many rows and takes the row-wise dot path, so each sequence's logits are bitwise those of decoding it alone, and
/// the cores share out whole chunks instead of synchronising inside every small product of a tiny decode step.
/// </summary>
public sealed class DecoderOnlyBatchDecoder(IDecoderOnlyModel model) : IBatchDecoder
{
    private sealed class State(KvCache[] caches) : IDecodeState
    {
        public KvCache[] Caches { get; } = caches; // [layer]
        public int Length => Caches.Length == 0 ? 0 : Caches[0].Length;
    }

    public int VocabSize => model.VocabSize;
    /// <summary>Layers allocate their buffers per call and share only read-only weights; each state has its own caches.</summary>
    public bool Concurrent => true;

    public int ClampNewTokens(int promptLength, int requested) => DecoderOnlyGenerator.ClampToContext(model, promptLength, requested);

    public IDecodeState Start(int length) => new State(model.NewCaches(1, Math.Max(1, length)).Select(l => l[0]).ToArray());

    public float[] Prefill(IDecodeState state, int[] prompt)
    {
        if (prompt.Length == 0) throw new QmoeException("generation needs a non-empty prompt (no bos token is added)");
        var h = model.ForwardHidden(new[] { prompt }, CachesOf(new[] { state }));
        int d = model.HiddenSize;
        return model.Logits(h[((prompt.Length - 1) * d)..], 1);
    }

    public void Step(IReadOnlyList<IDecodeState> states, ReadOnlySpan<int> tokens, Memory<float> logits)
    {
        if (tokens.Length != states.Count) throw new ArgumentException("one token per sequence");
        int n = states.Count, v = model.VocabSize;
        if (logits.Length < (long)n * v) throw new ArgumentException($"logits buffer of {logits.Length} for {n} x {v}");
        int chunk = Math.Min(Numerics.MatMul.DotPathMaxRows, (n + Threads.Count - 1) / Math.Max(1, Threads.Count));
        int chunks = (n + chunk - 1) / chunk;
        if (chunks <= 1) { StepChunk(states, tokens.ToArray(), logits.Span); return; }
        var ids = tokens.ToArray();
        Threads.ForEachAlone(chunks, c =>
        {
            int s0 = c * chunk, count = Math.Min(chunk, n - s0);
            StepChunk(states.Skip(s0).Take(count).ToArray(), ids[s0..(s0 + count)], logits.Span.Slice(s0 * v, count * v));
        });
    }

    /// <summary>One token for each of a few sequences (at most the dot path's rows): logits [states.Count, vocab] into <paramref name="logits"/>.</summary>
    private void StepChunk(IReadOnlyList<IDecodeState> states, int[] tokens, Span<float> logits)
    {
        using var exact = Kernels.BatchInvariance.Enter(); // each row as the sequence alone computes it, bitwise
        var batch = new int[states.Count][];
        for (int s = 0; s < batch.Length; s++) batch[s] = [tokens[s]];
        var h = model.ForwardHidden(batch, CachesOf(states));
        model.Logits(h, batch.Length, logits);
    }

    private KvCache[][] CachesOf(IReadOnlyList<IDecodeState> states) =>
        Enumerable.Range(0, model.Layers.Count).Select(l => states.Select(s => ((State)s).Caches[l]).ToArray()).ToArray();
}
