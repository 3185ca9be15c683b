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
/// independently (attention per sequence, RMS norm and routing per token, products on the row-wise dot path for
/// batches up to <see cref="Numerics.MatMul"/>'s 8 rows). Calls are not thread-safe: one caller drives a decoder.
/// </summary>
public interface IBatchDecoder
{
    int VocabSize { get; }
    /// <summary>New tokens that fit after a prompt of <paramref name="promptLength"/> tokens, at most
    /// <paramref name="requested"/>; refuses (QmoeException) a prompt that leaves no room.</summary>
    int ClampNewTokens(int promptLength, int requested);
    IDecodeState Start();
    /// <summary>Runs the prompt through the state; returns the logits [vocab] of the first new token.</summary>
    float[] Prefill(IDecodeState state, int[] prompt);
    /// <summary>Feeds tokens[s] to states[s] for every s as one batch; returns logits [states.Count, vocab].</summary>
    float[] Step(IReadOnlyList<IDecodeState> states, ReadOnlySpan<int> tokens);
}
