namespace Qmoe.Runtime;

/// <summary>One sequence's decoding state inside an <see cref="IBatchDecoder"/> (its KV caches).</summary>
public interface IDecodeState
{
    /// <summary>Tokens fed so far (prompt plus generated).</summary>
    int Length { get; }
}

/// <summary>
/// Multi-sequence decoding for continuous batching (SPEC §serve). Each sequence has its own state; a prompt is
/// prefilled alone; <see cref="Step"/> then feeds one token for each of several sequences as one batch (their
/// rows concatenated, so linear layers and experts run once per step). Sequences join and leave between steps.
/// A row of <see cref="Step"/>'s logits equals what the sequence alone would give: every layer computes rows
/// independently (attention per sequence, RMS norm and routing per token, products on the row-wise dot path of
/// <see cref="Numerics.MatMul"/>, at most its DotPathMaxRows rows at a time). One caller drives a decoder; when
/// <see cref="Concurrent"/>, that caller may run its calls on disjoint states in parallel.
/// </summary>
public interface IBatchDecoder
{
    int VocabSize { get; }
    /// <summary>Whether <see cref="Prefill"/> and <see cref="Step"/> calls on disjoint states may run at the same time
    /// on different threads (the model's forward keeps no per-call state in shared fields).</summary>
    bool Concurrent => false;
    /// <summary>New tokens that fit after a prompt of <paramref name="promptLength"/> tokens, at most
    /// <paramref name="requested"/>; refuses (QmoeException) a prompt that leaves no room.</summary>
    int ClampNewTokens(int promptLength, int requested);
    /// <summary>A new sequence's state, for a sequence expected to reach <paramref name="length"/> tokens (prompt plus new
    /// tokens): its caches may be sized for that up front (<see cref="Models.Layers.KvCache.MaxInitialCapacity"/> rows at
    /// most) rather than regrown and copied as tokens arrive, which made every decode step allocate.</summary>
    IDecodeState Start(int length);
    /// <summary>Runs the prompt through the state; returns the logits [vocab] of the first new token.</summary>
    float[] Prefill(IDecodeState state, int[] prompt);
    /// <summary>Feeds tokens[s] to states[s] for every s as one batch; writes logits [states.Count, vocab] into
    /// <paramref name="logits"/> (the caller's, reused step after step: a serving loop's largest per-step array).</summary>
    void Step(IReadOnlyList<IDecodeState> states, ReadOnlySpan<int> tokens, Memory<float> logits);
}
