using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// One layer of a decoder-only MoE: h += attn(norm(h)); h += mlp(norm(h)), where the MLP is a routed MoE
/// (plus any shared experts) or, in a dense layer, a plain feed-forward. Hidden states h: [batch.Tokens, hidden].
/// What a decoder-only family implements per layer; the shared runtime and compressor do the rest.
/// </summary>
public interface IDecoderLayer
{
    /// <summary>e.g. "model.layers.1"</summary>
    string Name { get; }
    /// <summary>The MoE's tensor prefix (e.g. "model.layers.1.block_sparse_moe"), or null for a dense layer.</summary>
    string? MoePrefix { get; }
    /// <summary>The routed experts of a sparse layer (replaceable: dequantized or compressed experts).</summary>
    IExperts Experts { get; set; }
    /// <summary>An empty key/value cache for one sequence of this layer's attention.</summary>
    KvCache NewCache(int capacity);
    /// <summary>Self-attention sub-layer; caches[s] holds sequence s's keys/values so far and receives the new ones.</summary>
    void SelfAttention(float[] h, SequenceBatch batch, KvCache[] caches);
    /// <summary>The normed input x of the MLP sub-layer.</summary>
    float[] MlpInput(float[] h, int tokens);
    /// <summary>The router's choice of experts for x (sparse layers).</summary>
    Routing Route(float[] x, SequenceBatch batch);
    /// <summary>h += moe(x) for the normed input x and its routing (sparse layers, shared experts included).</summary>
    void AddMlp(float[] h, float[] x, int tokens, Routing routing);
    /// <summary>The whole MLP sub-layer; returns the routing of a sparse layer (null if dense).</summary>
    Routing? FeedForwardLayer(float[] h, SequenceBatch batch);
}
