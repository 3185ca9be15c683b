using Qmoe.Models.Layers;
using Qmoe.Runtime;

namespace Qmoe.Models.Switch;

/// <summary>
/// <see cref="IBatchDecoder"/> for Switch (encoder-decoder): prefill encodes the prompt and feeds
/// decoder_start_token_id; a step batches the decoder over the sequences' self- and cross-attention caches, in
/// chunks of at most <see cref="Numerics.MatMul.DotPathMaxRows"/> sequences so that every row is bitwise the
/// sequence decoded alone (see <see cref="IBatchDecoder"/>).
/// </summary>
public sealed class SwitchBatchDecoder(SwitchModel model) : IBatchDecoder
{
    /// <summary>Decoder tokens per request (T5 has relative positions, so no context limit of its own).</summary>
    public const int MaxDecoderTokens = 4096;
    /// <summary>Prompt (encoder) tokens per request: relative positions set no limit, but the encoder's cost grows with
    /// the square of the length, so an unbounded prompt would hold the batch for minutes (found by the HTTP fuzzer).</summary>
    public const int MaxEncoderTokens = 1024;

    private sealed class State : IDecodeState
    {
        public SwitchModel.DecoderState? Decoder;
        public int Length => Decoder == null ? 0 : Decoder.Self[0][0].Length;
    }

    public int VocabSize => model.Config.VocabSize;

    public int ClampNewTokens(int promptLength, int requested)
    {
        if (requested < 0) throw new QmoeException($"max new tokens {requested} must not be negative");
        if (promptLength > MaxEncoderTokens)
            throw new QmoeException($"prompt of {promptLength} tokens exceeds the {MaxEncoderTokens} encoder tokens a request may have");
        int n = Math.Min(requested, MaxDecoderTokens - 1);
        KvCache.CheckBudget(model.Decoder.Length, model.Config.InnerDim, n + 1);
        return n;
    }

    /// <summary>The decoder's caches are made at prefill (the cross-attention ones from the encoder output).</summary>
    public IDecodeState Start(int length) => new State();

    public float[] Prefill(IDecodeState state, int[] prompt)
    {
        if (prompt.Length == 0) throw new QmoeException("generation needs a non-empty prompt");
        var s = (State)state;
        var enc = model.Encode(new[] { prompt });
        s.Decoder = model.StartDecoder(enc, new SequenceBatch(new[] { prompt.Length }));
        var h = model.DecodeHidden(new[] { new[] { model.Config.DecoderStartTokenId } }, s.Decoder);
        return model.Logits(h, 1);
    }

    public void Step(IReadOnlyList<IDecodeState> states, ReadOnlySpan<int> tokens, Memory<float> logits)
    {
        if (tokens.Length != states.Count) throw new ArgumentException("one token per sequence");
        int chunk = Numerics.MatMul.DotPathMaxRows, n = states.Count, v = VocabSize;
        if (logits.Length < (long)n * v) throw new ArgumentException($"logits buffer of {logits.Length} for {n} x {v}");
        for (int s0 = 0; s0 < n; s0 += chunk)
        {
            int count = Math.Min(chunk, n - s0);
            StepChunk(states.Skip(s0).Take(count).ToArray(), tokens.Slice(s0, count), logits.Span.Slice(s0 * v, count * v));
        }
    }

    private void StepChunk(IReadOnlyList<IDecodeState> states, ReadOnlySpan<int> tokens, Span<float> logits)
    {
        using var exact = Kernels.BatchInvariance.Enter(); // each row as the sequence alone computes it, bitwise
        var seqs = states.Select(s => ((State)s).Decoder ?? throw new InvalidOperationException("step before prefill")).ToArray();
        // One decoder state over all sequences: the per-sequence caches side by side ([layer][sequence]).
        var joint = new SwitchModel.DecoderState
        {
            Self = Enumerable.Range(0, model.Decoder.Length).Select(l => seqs.Select(d => d.Self[l][0]).ToArray()).ToArray(),
            Cross = Enumerable.Range(0, model.Decoder.Length).Select(l => seqs.Select(d => d.Cross[l][0]).ToArray()).ToArray(),
            Sequences = seqs.Length,
        };
        var batch = new int[seqs.Length][];
        for (int s = 0; s < batch.Length; s++) batch[s] = new[] { tokens[s] };
        var h = model.DecodeHidden(batch, joint);
        model.Logits(h, batch.Length, logits);
    }
}
