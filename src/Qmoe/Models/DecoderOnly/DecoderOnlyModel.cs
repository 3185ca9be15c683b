using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// The parts every Hugging Face decoder-only LM shares (Mixtral, Qwen3-MoE, DeepSeek-V3): <c>model.embed_tokens</c>, a stack
/// of decoder layers, the final <c>model.norm</c> and an untied <c>lm_head</c>, running from a memory-mapped
/// checkpoint. Activations are f32; weights stay in the file's dtype (FP8 ones are dequantized on load).
/// Sequences of any length are computed exactly (full causal attention, no sliding window).
/// </summary>
public abstract class DecoderOnlyModel<TLayer> : IDecoderOnlyModel where TLayer : class, IDecoderLayer
{
    private readonly Matrix _embed, _lmHead;
    private readonly RmsNorm _finalNorm;

    public TensorStore Store { get; }
    public TLayer[] Layers { get; }
    IReadOnlyList<IDecoderLayer> IDecoderOnlyModel.Layers => (IReadOnlyList<IDecoderLayer>)Layers;
    public int VocabSize { get; }
    public int HiddenSize { get; }
    public IReadOnlyList<int> EosTokenIds { get; }
    public abstract int NumExperts { get; }
    public abstract IExpertLayout ExpertLayout { get; }
    /// <summary>Refuses a sequence length the family does not compute as the reference does (default: any length).</summary>
    public virtual void CheckLength(int length) { }
    public virtual int MaxContext => int.MaxValue;
    /// <summary>Called with (layer, routing) after every sparse MLP (tests, statistics).</summary>
    public Action<TLayer, Routing>? RoutingObserver { get; set; }

    protected DecoderOnlyModel(TensorStore store, int vocab, int hidden, float normEps, IReadOnlyList<int> eos, Func<int, TLayer> layer, int layers)
    {
        Store = store; VocabSize = vocab; HiddenSize = hidden; EosTokenIds = eos;
        _embed = Matrix.View(store, "model.embed_tokens.weight", vocab, hidden);
        _lmHead = Matrix.View(store, "lm_head.weight", vocab, hidden);
        _finalNorm = new RmsNorm(store.ReadFloat32("model.norm.weight", hidden), normEps);
        Layers = Enumerable.Range(0, layers).Select(layer).ToArray();
    }

    /// <summary>Token embeddings [Σ lengths, hidden] of the concatenated sequences; ids are checked against the vocabulary.</summary>
    public float[] Embed(IReadOnlyList<int[]> sequences) => Embedding.Lookup(_embed, sequences.SelectMany(s => s).ToArray());

    public KvCache[][] NewCaches(int sequences, int capacity = 32) =>
        Layers.Select(l => Enumerable.Range(0, sequences).Select(_ => l.NewCache(capacity)).ToArray()).ToArray();

    /// <summary>Runs layer i in place on h [batch.Tokens, hidden] (new tokens of each sequence, appended to caches[s]).</summary>
    public void Layer(int i, float[] h, SequenceBatch batch, KvCache[] caches)
    {
        var l = Layers[i];
        l.SelfAttention(h, batch, caches);
        var r = l.FeedForwardLayer(h, batch);
        if (r != null) RoutingObserver?.Invoke(l, r);
    }

    public float[] ForwardHidden(IReadOnlyList<int[]> tokens, KvCache[][] caches)
    {
        var batch = new SequenceBatch(tokens.Select(s => s.Length).ToArray());
        var h = Embed(tokens);
        for (int i = 0; i < Layers.Length; i++) Layer(i, h, batch, caches[i]);
        _finalNorm.Forward(h, batch.Tokens, h);
        return h;
    }

    public float[] Logits(float[] hidden, int tokens) => Linear.Forward(hidden, tokens, _lmHead);
    public void Logits(ReadOnlySpan<float> hidden, int tokens, Span<float> logits) => Linear.Forward(hidden, tokens, _lmHead, logits);

    public float[] Forward(IReadOnlyList<int[]> sequences)
    {
        var h = ForwardHidden(sequences, NewCaches(sequences.Count, sequences.Max(s => s.Length)));
        return Logits(h, sequences.Sum(s => s.Length));
    }

    /// <summary>The final norm, in place (for pipelines that run layers one at a time).</summary>
    public void FinalNorm(Span<float> h, int tokens) => _finalNorm.Forward(h, tokens, h);

    public void Dispose() => Store.Dispose();
}
