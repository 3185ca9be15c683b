using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models;

/// <summary>
/// One pre-norm decoder layer of a causal LM: h += attn(norm(h)); h += mlp(norm(h)), the MLP dense or sparse.
/// Hidden states h: [batch.Tokens, hidden], updated in place.
/// </summary>
public interface IDecoderLayer
{
    int Index { get; }
    /// <summary>e.g. "model.layers.1"</summary>
    string Name { get; }
    /// <summary>An empty KV cache for one sequence (widths are the layer's).</summary>
    KvCache NewCache(int capacity);
    /// <summary>Self-attention sub-layer; caches[s] holds sequence s's keys/values so far and receives the new ones.</summary>
    void SelfAttention(float[] h, SequenceBatch batch, KvCache[] caches);
    /// <summary>The MLP sub-layer; returns its routing, or null for a dense MLP.</summary>
    Routing? FeedForwardLayer(float[] h, SequenceBatch batch);
}
