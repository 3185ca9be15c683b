using System.Numerics.Tensors;
using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// What the Hugging Face decoder-only MoE layers share (Mixtral, Qwen3-MoE, DeepSeek-V3):
/// h += attn(rms_norm(h)) with <c>input_layernorm</c>; h += mlp(rms_norm(h)) with <c>post_attention_layernorm</c>,
/// where the MLP is either routed experts weighted per token (plus any shared experts, added on every token) or,
/// in a dense layer, one SwiGLU MLP. A family supplies the attention and builds the router and experts.
/// Hidden states h: [batch.Tokens, hidden].
/// </summary>
public abstract class MoeDecoderLayer : IDecoderLayer
{
    private readonly RmsNorm _inputNorm, _postNorm;
    private readonly int _hidden;
    private IExperts? _experts;
    private GatedMlp? _denseMlp;

    public int Index { get; }
    /// <summary>e.g. "model.layers.1"</summary>
    public string Name { get; }
    /// <summary>The MoE's tensor prefix, e.g. "model.layers.1.mlp"; null for a dense layer.</summary>
    public string? MoePrefix { get; }
    public bool IsSparse => MoePrefix != null;
    /// <summary>The router (sparse layers only).</summary>
    public IRouter? Router { get; private set; }
    /// <summary>Shared experts as one SwiGLU MLP run on every token (sparse layers that have them).</summary>
    public GatedMlp? SharedExperts { get; private set; }
    /// <summary>The routed experts (sparse layers only; replaceable: dequantized or compressed experts).</summary>
    public IExperts Experts
    {
        get => _experts ?? throw new InvalidOperationException($"{Name} is a dense layer");
        set => _experts = IsSparse ? value : throw new InvalidOperationException($"{Name} is a dense layer");
    }

    /// <param name="store">the checkpoint's tensors</param>
    /// <param name="index">the layer's index (its tensors are under model.layers.{index})</param>
    /// <param name="hidden">the hidden size</param>
    /// <param name="rmsNormEps">the RMSNorms' epsilon</param>
    /// <param name="moeName">The MoE's name under the layer (e.g. "mlp", "block_sparse_moe") for a sparse layer; null for a dense one.</param>
    protected MoeDecoderLayer(TensorStore store, int index, int hidden, float rmsNormEps, string? moeName)
    {
        Index = index;
        _hidden = hidden;
        Name = $"model.layers.{index}";
        MoePrefix = moeName == null ? null : $"{Name}.{moeName}";
        _inputNorm = new RmsNorm(store.ReadFloat32($"{Name}.input_layernorm.weight", hidden), rmsNormEps);
        _postNorm = new RmsNorm(store.ReadFloat32($"{Name}.post_attention_layernorm.weight", hidden), rmsNormEps);
    }

    /// <summary>A sparse layer's MLP: its router, routed experts (made once <see cref="Router"/> is set, so expert
    /// factories can read it) and optional shared experts.</summary>
    protected void SetMoe(IRouter router, Func<IExperts> experts, GatedMlp? shared = null)
    {
        if (!IsSparse) throw new InvalidOperationException($"{Name} is a dense layer");
        Router = router;
        _experts = experts();
        SharedExperts = shared;
    }

    /// <summary>A dense layer's MLP.</summary>
    protected void SetDenseMlp(GatedMlp mlp) =>
        _denseMlp = IsSparse ? throw new InvalidOperationException($"{Name} is a sparse layer") : mlp;

    public abstract KvCache NewCache(int capacity);

    /// <summary>The attention output [batch.Tokens, hidden] of the normed input x (its first batch.Tokens rows; the
    /// array may be longer); appends the new keys/values to caches[s].</summary>
    protected abstract float[] Attend(float[] x, SequenceBatch batch, KvCache[] caches);

    public void SelfAttention(float[] h, SequenceBatch batch, KvCache[] caches)
    {
        using var x = new Numerics.ScratchBuffer((long)batch.Tokens * _hidden);
        _inputNorm.Forward(h, batch.Tokens, x.Span);
        TensorPrimitives.Add(h, Attend(x.Array, batch, caches), h);
    }

    /// <summary>The normed input of the MLP sub-layer: rms_norm(h).</summary>
    public float[] MlpInput(float[] h, int tokens) => _postNorm.Forward(h, tokens);

    /// <summary>The router's top-k experts for the normed MLP input (sparse layers; no capacity).</summary>
    public Routing Route(float[] mlpInput, SequenceBatch batch) =>
        (Router ?? throw new InvalidOperationException($"{Name} is a dense layer")).Route(mlpInput, batch.Lengths, capacity: 0);

    /// <summary>h += moe(x) for the normed input x and its routing (sparse layers; shared experts included).</summary>
    public void AddMlp(float[] h, float[] x, int tokens, Routing routing) => AddToResidual(h, x, tokens, routing);

    /// <summary>h += mlp(x): the dense MLP, or the experts weighted by <paramref name="routing"/> plus the shared experts.</summary>
    private void AddToResidual(float[] h, float[] x, int tokens, Routing? routing)
    {
        using var buffer = new Numerics.ScratchBuffer((long)tokens * _hidden);
        var y = buffer.Span;
        if (_denseMlp != null) _denseMlp.Forward(x, tokens, y);
        else
        {
            MoeDispatch.Forward(x, routing ?? throw new ArgumentNullException(nameof(routing)), Experts, y);
            if (SharedExperts != null)
            {
                using var shared = new Numerics.ScratchBuffer(y.Length);
                SharedExperts.Forward(x, tokens, shared.Span);
                TensorPrimitives.Add(y, shared.Span, y);
            }
        }
        TensorPrimitives.Add(h, y, h);
    }

    /// <summary>The whole MLP sub-layer; returns the routing of a sparse layer (null if dense).</summary>
    public Routing? FeedForwardLayer(float[] h, SequenceBatch batch)
    {
        var x = MlpInput(h, batch.Tokens);
        var routing = IsSparse ? Route(x, batch) : null;
        AddToResidual(h, x, batch.Tokens, routing);
        return routing;
    }
}
