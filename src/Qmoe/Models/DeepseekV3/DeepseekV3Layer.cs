using System.Numerics.Tensors;
using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// One DeepSeek-V3 decoder layer (HF <c>DeepseekV3DecoderLayer</c>): h += mla(rms_norm(h)); h += mlp(rms_norm(h)).
/// The MLP is dense (<c>mlp.{gate,up,down}_proj</c>, intermediate_size) for the first first_k_dense_replace
/// layers, else an MoE: <see cref="GroupLimitedRouter"/> over <c>mlp.gate</c>, routed SwiGLU experts
/// <c>mlp.experts.E.*</c> weighted per token, plus the shared experts <c>mlp.shared_experts.*</c> (width
/// moe_intermediate_size · n_shared_experts) on every token: y = Σ wₖ expertₖ(x) + shared(x).
/// </summary>
public sealed class DeepseekV3Layer : IDecoderLayer
{
    private readonly DeepseekV3Config _cfg;
    private readonly RmsNorm _inputNorm, _postNorm;
    private readonly MlaAttention _attn;
    private readonly GatedMlp? _denseMlp;

    public int Index { get; }
    public string Name { get; }
    /// <summary>The MoE's tensor prefix, e.g. "model.layers.1.mlp"; null for a dense layer.</summary>
    public string? MoePrefix { get; }
    public bool IsSparse { get; }
    public GroupLimitedRouter? Router { get; }
    /// <summary>The routed experts (sparse layers only; replaceable: dequantized or compressed experts).</summary>
    public IExperts Experts
    {
        get => _experts ?? throw new InvalidOperationException($"{Name} is a dense layer");
        set => _experts = IsSparse ? value : throw new InvalidOperationException($"{Name} is a dense layer");
    }
    private IExperts? _experts;
    /// <summary>The shared experts as one SwiGLU MLP (sparse layers with n_shared_experts &gt; 0).</summary>
    public GatedMlp? SharedExperts { get; }

    public DeepseekV3Layer(TensorStore store, DeepseekV3Config cfg, int index, RotaryEmbedding rope, Func<DeepseekV3Layer, IExperts>? expertFactory)
    {
        _cfg = cfg; Index = index;
        Name = $"model.layers.{index}";
        IsSparse = cfg.IsSparse(index);
        string mlp = $"{Name}.mlp";
        MoePrefix = IsSparse ? mlp : null;
        int d = cfg.HiddenSize;
        _inputNorm = new RmsNorm(store.ReadFloat32($"{Name}.input_layernorm.weight", d), cfg.RmsNormEps);
        _postNorm = new RmsNorm(store.ReadFloat32($"{Name}.post_attention_layernorm.weight", d), cfg.RmsNormEps);
        _attn = new MlaAttention(store, cfg, $"{Name}.self_attn", rope);
        if (IsSparse)
        {
            int E = cfg.NumRoutedExperts;
            Router = new GroupLimitedRouter(Matrix.View(store, $"{mlp}.gate.weight", E, d),
                store.ReadFloat32($"{mlp}.gate.e_score_correction_bias", E), cfg.ExpertsPerToken, cfg.NumGroups,
                cfg.TopkGroups, cfg.NormTopkProb, (float)cfg.RoutedScalingFactor);
            _experts = expertFactory != null ? expertFactory(this)
                : SwiGluExperts.Load(store, mlp, E, d, cfg.MoeIntermediateSize, SwiGluExpertLayout.ProjNames);
            if (cfg.NumSharedExperts > 0)
                SharedExperts = GatedMlp.Load(store, $"{mlp}.shared_experts", d, cfg.MoeIntermediateSize * cfg.NumSharedExperts);
        }
        else _denseMlp = GatedMlp.Load(store, mlp, d, cfg.IntermediateSize);
    }

    public KvCache NewCache(int capacity) => _attn.NewCache(capacity);

    public void SelfAttention(float[] h, SequenceBatch batch, KvCache[] caches)
    {
        var x = _inputNorm.Forward(h, batch.Tokens);
        TensorPrimitives.Add(h, _attn.Forward(x, batch, caches), h);
    }

    /// <summary>The normed input of the MLP sub-layer: rms_norm(h).</summary>
    public float[] MlpInput(float[] h, int tokens) => _postNorm.Forward(h, tokens);

    /// <summary>Group-limited top-k routing of the normed MLP input (sparse layers).</summary>
    public Routing Route(float[] mlpInput, SequenceBatch batch) =>
        (Router ?? throw new InvalidOperationException($"{Name} is a dense layer")).Route(mlpInput, batch.Lengths, capacity: 0);

    /// <summary>h += moe(x) for the normed input x and its routing (sparse layers) (the shared experts included).</summary>
    public void AddMlp(float[] h, float[] x, int tokens, Routing routing) => AddToResidual(h, x, tokens, routing);

    /// <summary>h += mlp(x): the dense MLP, or the experts weighted by <paramref name="routing"/>.</summary>
    private void AddToResidual(float[] h, float[] x, int tokens, Routing? routing)
    {
        var y = new float[tokens * _cfg.HiddenSize];
        if (_denseMlp != null) _denseMlp.Forward(x, tokens, y);
        else
        {
            MoeDispatch.Forward(x, routing ?? throw new ArgumentNullException(nameof(routing)), Experts, y);
            if (SharedExperts != null)
            {
                var shared = new float[y.Length];
                SharedExperts.Forward(x, tokens, shared);
                TensorPrimitives.Add(y, shared, y);
            }
        }
        TensorPrimitives.Add(h, y, h);
    }

    public Routing? FeedForwardLayer(float[] h, SequenceBatch batch)
    {
        var x = MlpInput(h, batch.Tokens);
        var routing = IsSparse ? Route(x, batch) : null;
        AddToResidual(h, x, batch.Tokens, routing);
        return routing;
    }
}
