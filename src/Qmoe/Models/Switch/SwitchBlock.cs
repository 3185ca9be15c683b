using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Switch;

/// <summary>
/// One T5/Switch block: self-attention, (decoder only) cross-attention, and a feed-forward that is either
/// dense or a sparse MoE layer. Each sub-layer is pre-norm with a residual: h += sublayer(rms_norm(h)).
/// Hidden states h: [batch.Tokens, d_model].
/// </summary>
public sealed class SwitchBlock
{
    private readonly SwitchConfig _cfg;
    private readonly RmsNorm _selfNorm, _ffNorm;
    private readonly AttentionWeights _self;
    private readonly RmsNorm? _crossNorm;
    private readonly AttentionWeights? _cross;
    private readonly Matrix? _wi, _wo;

    /// <summary>e.g. "encoder.block.1"</summary>
    public string Name { get; }
    /// <summary>The MLP's tensor prefix, e.g. "encoder.block.1.layer.1.mlp" (HF naming).</summary>
    public string MlpPrefix { get; }
    public bool IsDecoder => _cross != null;
    public Router? Router { get; }
    /// <summary>The experts of a sparse block (replaceable: dequantized or compressed experts).</summary>
    public IExperts? Experts { get; set; }
    public bool IsSparse => Router != null;

    public SwitchBlock(TensorStore store, SwitchConfig cfg, bool decoder, int index, bool sparse,
        Func<SwitchBlock, IExperts>? expertFactory)
    {
        _cfg = cfg;
        Name = $"{(decoder ? "decoder" : "encoder")}.block.{index}";
        int d = cfg.DModel, inner = cfg.InnerDim;
        float[] Norm(int layer) => store.ReadFloat32($"{Name}.layer.{layer}.layer_norm.weight", d);
        var t5 = ("q", "k", "v", "o");
        _selfNorm = new RmsNorm(Norm(0), cfg.LayerNormEpsilon);
        _self = AttentionWeights.Load(store, $"{Name}.layer.0.SelfAttention", d, inner, inner, t5);
        int ffLayer = 1;
        if (decoder)
        {
            _crossNorm = new RmsNorm(Norm(1), cfg.LayerNormEpsilon);
            _cross = AttentionWeights.Load(store, $"{Name}.layer.1.EncDecAttention", d, inner, inner, t5);
            ffLayer = 2;
        }
        _ffNorm = new RmsNorm(Norm(ffLayer), cfg.LayerNormEpsilon);
        MlpPrefix = $"{Name}.layer.{ffLayer}.mlp";
        if (sparse)
        {
            if (!store.Contains($"{MlpPrefix}.router.classifier.weight"))
                throw new QmoeException($"{store.Directory}: config says {Name} is sparse but {MlpPrefix}.router.classifier.weight is missing");
            Router = new Router(Matrix.View(store, $"{MlpPrefix}.router.classifier.weight", cfg.NumExperts, d), k: 1, renormalize: false);
            Experts = expertFactory != null ? expertFactory(this) : LoadDenseExperts(store, cfg, MlpPrefix);
        }
        else
        {
            _wi = Matrix.View(store, $"{MlpPrefix}.wi.weight", cfg.DFf, d);
            _wo = Matrix.View(store, $"{MlpPrefix}.wo.weight", d, cfg.DFf);
        }
    }

    /// <summary>Views of the checkpoint's experts <c>{prefix}.experts.expert_{e}.wi/wo.weight</c> (nothing is read yet).</summary>
    public static ReluExperts LoadDenseExperts(TensorStore store, SwitchConfig cfg, string prefix)
    {
        var wi = new Matrix[cfg.NumExperts];
        var wo = new Matrix[cfg.NumExperts];
        for (int e = 0; e < cfg.NumExperts; e++)
        {
            wi[e] = Matrix.View(store, $"{prefix}.experts.expert_{e}.wi.weight", cfg.DFf, cfg.DModel);
            wo[e] = Matrix.View(store, $"{prefix}.experts.expert_{e}.wo.weight", cfg.DModel, cfg.DFf);
        }
        return new ReluExperts(wi, wo);
    }

    /// <summary>Self-attention sub-layer. caches[s] receives sequence s's keys/values (decoder); null: no cache (encoder).</summary>
    public void SelfAttention(float[] h, SequenceBatch batch, IAttentionBias bias, KvCache[]? caches)
    {
        int inner = _cfg.InnerDim;
        var x = _selfNorm.Forward(h, batch.Tokens);
        var q = Linear.Forward(x, batch.Tokens, _self.Q);
        var k = Linear.Forward(x, batch.Tokens, _self.K);
        var v = Linear.Forward(x, batch.Tokens, _self.V);
        var seqs = new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
        {
            int off = batch.Offsets[s], n = batch.Lengths[s];
            seqs[s] = caches == null
                ? new AttentionSequence(off, n, 0, k[(off * inner)..((off + n) * inner)], v[(off * inner)..((off + n) * inner)], n)
                : caches[s].Extend(off, k.AsSpan(off * inner), v.AsSpan(off * inner), n);
        }
        var a = new float[batch.Tokens * inner];
        // T5 does not scale scores by 1/sqrt(d_kv) (folded into the initialisation).
        Attention.Forward(q, seqs, _cfg.NumHeads, _cfg.NumHeads, _cfg.DKv, 1f, causal: caches != null, bias, a);
        AddProjection(h, a, batch.Tokens, _self.O);
    }

    /// <summary>Cross-attention sub-layer over each sequence's encoder keys/values (no position bias).</summary>
    public void CrossAttention(float[] h, SequenceBatch batch, KvCache[] encoderKv)
    {
        var x = _crossNorm!.Forward(h, batch.Tokens);
        var q = Linear.Forward(x, batch.Tokens, _cross!.Q);
        var seqs = new AttentionSequence[batch.Count];
        for (int s = 0; s < batch.Count; s++)
            seqs[s] = new AttentionSequence(batch.Offsets[s], batch.Lengths[s], 0, encoderKv[s].K, encoderKv[s].V, encoderKv[s].Length);
        var a = new float[batch.Tokens * _cfg.InnerDim];
        Attention.Forward(q, seqs, _cfg.NumHeads, _cfg.NumHeads, _cfg.DKv, 1f, causal: false, null, a);
        AddProjection(h, a, batch.Tokens, _cross.O);
    }

    /// <summary>Cross-attention keys and values of one sequence's encoder output enc [n, d_model], computed once.</summary>
    public KvCache CrossKv(ReadOnlySpan<float> enc, int n) =>
        new(Linear.Forward(enc, n, _cross!.K), Linear.Forward(enc, n, _cross.V), n, _cfg.InnerDim);

    /// <summary>The normed input of the feed-forward sub-layer: rms_norm(h).</summary>
    public float[] MlpInput(float[] h, int tokens) => _ffNorm.Forward(h, tokens);

    /// <summary>Routes the normed MLP input (sparse blocks only).</summary>
    public Routing Route(float[] mlpInput, SequenceBatch batch, bool useCapacity) =>
        Router!.Route(mlpInput, batch.Lengths, useCapacity ? _cfg.ExpertCapacity : 0);

    /// <summary>h += mlp(x) for the normed input x; sparse blocks need the routing of x.</summary>
    public void AddMlp(float[] h, float[] x, int tokens, Routing? routing)
    {
        var y = new float[tokens * _cfg.DModel];
        if (IsSparse) MoeDispatch.Forward(x, routing!, Experts!, y);
        else FeedForward.Relu(x, tokens, _wi!, _wo!, y);
        System.Numerics.Tensors.TensorPrimitives.Add(h, y, h);
    }

    /// <summary>The whole feed-forward sub-layer; returns the routing of a sparse block (null if dense).</summary>
    public Routing? FeedForwardLayer(float[] h, SequenceBatch batch, bool useCapacity)
    {
        var x = MlpInput(h, batch.Tokens);
        var routing = IsSparse ? Route(x, batch, useCapacity) : null;
        AddMlp(h, x, batch.Tokens, routing);
        return routing;
    }

    private static void AddProjection(float[] h, float[] a, int tokens, Matrix o)
    {
        var y = Linear.Forward(a, tokens, o);
        System.Numerics.Tensors.TensorPrimitives.Add(h, y, h);
    }
}
