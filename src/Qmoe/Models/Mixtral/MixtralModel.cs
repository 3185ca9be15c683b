using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>
/// A Mixtral decoder-only MoE (HF <c>MixtralForCausalLM</c>) running from a memory-mapped checkpoint. Weights
/// stay in the file's dtype; only norms are copied. Activations are f32.
/// </summary>
public sealed class MixtralModel : IDecoderOnlyModel
{
    private readonly Matrix _embed, _lmHead;
    private readonly RmsNorm _finalNorm;

    public MixtralConfig Config { get; }
    public TensorStore Store { get; }
    public MixtralLayer[] Layers { get; }
    IReadOnlyList<IDecoderLayer> IDecoderOnlyModel.Layers => Layers;
    public int VocabSize => Config.VocabSize;
    public int HiddenSize => Config.HiddenSize;
    public IReadOnlyList<int> EosTokenIds => [Config.EosTokenId];
    public int NumExperts => Config.NumExperts;
    public IExpertLayout ExpertLayout { get; }
    public void CheckLength(int length) => Config.CheckLength(length);
    /// <summary>Called with (layer, routing) after every MoE sub-layer (tests, statistics).</summary>
    public Action<MixtralLayer, Routing>? RoutingObserver { get; set; }

    private MixtralModel(MixtralConfig cfg, TensorStore store, Func<MixtralLayer, IExperts>? expertFactory)
    {
        Config = cfg; Store = store;
        int d = cfg.HiddenSize;
        ExpertLayout = new SwiGluExpertLayout(d, cfg.IntermediateSize, SwiGluExpertLayout.MixtralNames);
        _embed = Matrix.View(store, "model.embed_tokens.weight", cfg.VocabSize, d);
        _lmHead = Matrix.View(store, "lm_head.weight", cfg.VocabSize, d);
        _finalNorm = new RmsNorm(store.ReadFloat32("model.norm.weight", d), cfg.RmsNormEps);
        var rope = new RotaryEmbedding(cfg.HeadDim, cfg.RopeTheta);
        Layers = Enumerable.Range(0, cfg.NumLayers).Select(i => new MixtralLayer(store, cfg, i, rope, expertFactory)).ToArray();
    }

    /// <summary>
    /// Opens a Hugging Face Mixtral directory. <paramref name="expertFactory"/> supplies each layer's experts
    /// (default: views of the checkpoint's dense experts).
    /// </summary>
    public static MixtralModel Load(string dir, Func<MixtralLayer, IExperts>? expertFactory = null)
    {
        var cfg = MixtralConfig.Load(dir);
        var store = TensorStore.Open(dir);
        try { return new MixtralModel(cfg, store, expertFactory); }
        catch { store.Dispose(); throw; }
    }

    /// <summary>Token embeddings [Σ lengths, hidden] of the concatenated sequences; ids are checked against the vocabulary.</summary>
    public float[] Embed(IReadOnlyList<int[]> sequences) => Embedding.Lookup(_embed, sequences.SelectMany(s => s).ToArray());

    /// <summary>Per-layer, per-sequence key/value caches of a batch of sequences: [layer][sequence].</summary>
    public KvCache[][] NewCaches(int sequences, int capacity = 32) =>
        Layers.Select(l => Enumerable.Range(0, sequences).Select(_ => l.NewCache(capacity)).ToArray()).ToArray();

    /// <summary>Runs layer i in place on h [batch.Tokens, hidden] (new tokens of each sequence, appended to caches[s]).</summary>
    public void Layer(int i, float[] h, SequenceBatch batch, KvCache[] caches)
    {
        var l = Layers[i];
        l.SelfAttention(h, batch, caches);
        var r = l.FeedForwardLayer(h, batch);
        RoutingObserver?.Invoke(l, r);
    }

    /// <summary>
    /// Feeds new tokens (sequence s gets <paramref name="tokens"/>[s], after what its caches hold) and returns
    /// the final hidden states [new tokens, hidden] after the final norm.
    /// </summary>
    public float[] ForwardHidden(IReadOnlyList<int[]> tokens, KvCache[][] caches)
    {
        var batch = new SequenceBatch(tokens.Select(s => s.Length).ToArray());
        var h = Embed(tokens);
        for (int i = 0; i < Layers.Length; i++) Layer(i, h, batch, caches[i]);
        _finalNorm.Forward(h, batch.Tokens, h);
        return h;
    }

    /// <summary>LM head: logits [tokens, vocab] of final hidden states.</summary>
    public float[] Logits(float[] hidden, int tokens) => Linear.Forward(hidden, tokens, _lmHead);

    /// <summary>Logits [Σ lengths, vocab] of whole sequences (no cache kept).</summary>
    public float[] Forward(IReadOnlyList<int[]> sequences)
    {
        var h = ForwardHidden(sequences, NewCaches(sequences.Count, sequences.Max(s => s.Length)));
        return Logits(h, sequences.Sum(s => s.Length));
    }

    /// <summary>The final norm, in place (for pipelines that run layers one at a time).</summary>
    public void FinalNorm(Span<float> h, int tokens) => _finalNorm.Forward(h, tokens, h);

    public void Dispose() => Store.Dispose();
}
