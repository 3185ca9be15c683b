using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// A decoder-only MoE (causal LM) running from a memory-mapped checkpoint: embeddings, layers, final norm and
/// LM head. The shared greedy generator, causal evaluator and sequential compressor work on this interface.
/// </summary>
public interface IDecoderOnlyModel : IDisposable
{
    TensorStore Store { get; }
    int VocabSize { get; }
    int HiddenSize { get; }
    /// <summary>Every id that ends greedy generation (config.json and generation_config.json eos ids).</summary>
    IReadOnlyList<int> EosTokenIds { get; }
    int NumExperts { get; }
    IExpertLayout ExpertLayout { get; }
    IReadOnlyList<IDecoderLayer> Layers { get; }
    /// <summary>Longest sequence generation runs to (prompt plus new tokens), e.g. max_position_embeddings.</summary>
    int MaxContext => int.MaxValue;
    /// <summary>Refuses a sequence length the runtime would not compute as the reference does.</summary>
    void CheckLength(int length);
    /// <summary>Token embeddings [Σ lengths, hidden] of the concatenated sequences; ids are checked against the vocabulary.</summary>
    float[] Embed(IReadOnlyList<int[]> sequences);
    /// <summary>Per-layer, per-sequence key/value caches of a batch of sequences: [layer][sequence].</summary>
    KvCache[][] NewCaches(int sequences, int capacity = 32);
    /// <summary>Feeds new tokens (after what the caches hold); returns the final hidden states [new tokens, hidden] after the final norm.</summary>
    float[] ForwardHidden(IReadOnlyList<int[]> tokens, KvCache[][] caches);
    /// <summary>LM head: logits [tokens, vocab] of final hidden states.</summary>
    float[] Logits(float[] hidden, int tokens);
    /// <summary>As <see cref="Logits(float[], int)"/>, into <paramref name="logits"/> [tokens, vocab].</summary>
    void Logits(ReadOnlySpan<float> hidden, int tokens, Span<float> logits);
    /// <summary>Logits [Σ lengths, vocab] of whole sequences (no cache kept).</summary>
    float[] Forward(IReadOnlyList<int[]> sequences);
}
