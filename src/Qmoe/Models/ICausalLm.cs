using Qmoe.Models.Layers;

namespace Qmoe.Models;

/// <summary>
/// A decoder-only language model as generation and evaluation use it, whatever its family: embeddings,
/// layers with per-sequence KV caches, final norm and LM head.
/// </summary>
public interface ICausalLm : IDisposable
{
    int VocabSize { get; }
    int HiddenSize { get; }
    /// <summary>Every id that ends greedy generation (config and generation_config eos ids).</summary>
    IReadOnlyList<int> EosTokenIds { get; }
    /// <summary>Per-layer, per-sequence key/value caches of a batch of sequences: [layer][sequence].</summary>
    KvCache[][] NewCaches(int sequences, int capacity = 32);
    /// <summary>
    /// Feeds new tokens (sequence s gets <paramref name="tokens"/>[s], after what its caches hold) and returns the
    /// final hidden states [new tokens, hidden] after the final norm.
    /// </summary>
    float[] ForwardHidden(IReadOnlyList<int[]> tokens, KvCache[][] caches);
    /// <summary>LM head: logits [tokens, vocab] of final hidden states.</summary>
    float[] Logits(float[] hidden, int tokens);
    /// <summary>Logits [Σ lengths, vocab] of whole sequences (no cache kept).</summary>
    float[] Forward(IReadOnlyList<int[]> sequences);
}
