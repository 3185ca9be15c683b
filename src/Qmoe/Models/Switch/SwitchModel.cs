using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Switch;

/// <summary>
/// A Switch Transformer encoder-decoder (HF <c>SwitchTransformersForConditionalGeneration</c>) running from a
/// memory-mapped checkpoint. Weights stay in the file's dtype; only norms and the position-bias tables are
/// copied. Activations are f32.
/// </summary>
public sealed class SwitchModel : IDisposable
{
    private readonly Matrix _embed, _lmHead;
    private readonly float _lmScale;
    private readonly RmsNorm _encFinal, _decFinal;
    private readonly RelativePositionBias _encBias, _decBias;

    public SwitchConfig Config { get; }
    public TensorStore Store { get; }
    public SwitchBlock[] Encoder { get; }
    public SwitchBlock[] Decoder { get; }
    /// <summary>The encoder's bidirectional relative position bias (shared by its blocks).</summary>
    public RelativePositionBias EncoderBias => _encBias;
    /// <summary>The decoder's causal relative position bias.</summary>
    public RelativePositionBias DecoderBias => _decBias;
    /// <summary>Apply the config's expert capacity (default); false = unlimited (<c>--no-capacity</c>).</summary>
    public bool UseCapacity { get; set; } = true;
    /// <summary>Called with (block, routing) after every sparse feed-forward (tests, statistics).</summary>
    public Action<SwitchBlock, Routing>? RoutingObserver { get; set; }

    private SwitchModel(SwitchConfig cfg, TensorStore store, Func<SwitchBlock, IExperts>? expertFactory)
    {
        Config = cfg; Store = store;
        int d = cfg.DModel;
        _embed = Matrix.View(store, "shared.weight", cfg.VocabSize, d);
        if (cfg.TieWordEmbeddings) { _lmHead = _embed; _lmScale = 1f / MathF.Sqrt(d); }
        else { _lmHead = Matrix.View(store, "lm_head.weight", cfg.VocabSize, d); _lmScale = 1f; }
        Encoder = Enumerable.Range(0, cfg.NumEncoderLayers)
            .Select(i => new SwitchBlock(store, cfg, false, i, cfg.IsSparseEncoderLayer(i), expertFactory)).ToArray();
        Decoder = Enumerable.Range(0, cfg.NumDecoderLayers)
            .Select(i => new SwitchBlock(store, cfg, true, i, cfg.IsSparseDecoderLayer(i), expertFactory)).ToArray();
        _encFinal = new RmsNorm(store.ReadFloat32("encoder.final_layer_norm.weight", d), cfg.LayerNormEpsilon);
        _decFinal = new RmsNorm(store.ReadFloat32("decoder.final_layer_norm.weight", d), cfg.LayerNormEpsilon);
        int nb = cfg.RelativeAttentionNumBuckets, h = cfg.NumHeads;
        _encBias = new RelativePositionBias(store.ReadFloat32("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", nb, h),
            nb, h, cfg.RelativeAttentionMaxDistance, bidirectional: true);
        _decBias = new RelativePositionBias(store.ReadFloat32("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", nb, h),
            nb, h, cfg.RelativeAttentionMaxDistance, bidirectional: false);
    }

    /// <summary>
    /// Opens a Hugging Face Switch directory. <paramref name="expertFactory"/> supplies each sparse block's experts
    /// (default: views of the checkpoint's dense experts).
    /// </summary>
    public static SwitchModel Load(string dir, Func<SwitchBlock, IExperts>? expertFactory = null)
    {
        var cfg = SwitchConfig.Load(dir);
        return TensorStore.OpenOwned(dir, store => new SwitchModel(cfg, store, expertFactory));
    }

    public IEnumerable<SwitchBlock> Blocks => Encoder.Concat(Decoder);

    /// <summary>Token embeddings [ids.Length, d_model]; ids are checked against the vocabulary.</summary>
    public float[] Embed(ReadOnlySpan<int> ids) => Embedding.Lookup(_embed, ids);

    private static int[] Concat(IReadOnlyList<int[]> seqs) => seqs.SelectMany(s => s).ToArray();

    /// <summary>Hidden states before the encoder's first block (token embeddings) for sequences <paramref name="inputIds"/>.</summary>
    public float[] EncoderEmbed(IReadOnlyList<int[]> inputIds) => Embed(Concat(inputIds));

    /// <summary>Runs encoder block <paramref name="i"/> in place on h [batch.Tokens, d_model].</summary>
    public void EncoderBlock(int i, float[] h, SequenceBatch batch)
    {
        var b = Encoder[i];
        b.SelfAttention(h, batch, _encBias, caches: null);
        var r = b.FeedForwardLayer(h, batch, UseCapacity);
        if (r != null) RoutingObserver?.Invoke(b, r);
    }

    /// <summary>The encoder's final norm, in place.</summary>
    public void EncoderFinalNorm(Span<float> h, int tokens) => _encFinal.Forward(h, tokens, h);

    /// <summary>Encoder output [tokens of all sequences, d_model] (after the final norm).</summary>
    public float[] Encode(IReadOnlyList<int[]> inputIds)
    {
        var batch = new SequenceBatch(inputIds.Select(s => s.Length).ToArray());
        var h = EncoderEmbed(inputIds);
        for (int i = 0; i < Encoder.Length; i++) EncoderBlock(i, h, batch);
        EncoderFinalNorm(h, batch.Tokens);
        return h;
    }

    /// <summary>Decoder state of a batch of sequences: self-attention caches and cross-attention keys/values.</summary>
    public sealed class DecoderState
    {
        internal KvCache[][] Self = null!;  // [layer][sequence]
        internal KvCache[][] Cross = null!; // [layer][sequence]
        public int Sequences { get; internal set; }
    }

    /// <summary>Prepares decoding against encoder output enc (rows of the sequences in <paramref name="encBatch"/>).</summary>
    public DecoderState StartDecoder(float[] enc, SequenceBatch encBatch)
    {
        int d = Config.DModel;
        var st = new DecoderState { Sequences = encBatch.Count };
        st.Self = Decoder.Select(_ => Enumerable.Range(0, encBatch.Count).Select(_ => new KvCache(Config.InnerDim)).ToArray()).ToArray();
        st.Cross = Decoder.Select(b => Enumerable.Range(0, encBatch.Count)
            .Select(s => b.CrossKv(enc.AsSpan(encBatch.Offsets[s] * d, encBatch.Lengths[s] * d), encBatch.Lengths[s])).ToArray()).ToArray();
        return st;
    }

    /// <summary>Runs decoder block i in place on h for new tokens of each sequence (appending to the caches).</summary>
    public void DecoderBlock(int i, float[] h, SequenceBatch batch, DecoderState state)
    {
        var b = Decoder[i];
        b.SelfAttention(h, batch, _decBias, state.Self[i]);
        b.CrossAttention(h, batch, state.Cross[i]);
        var r = b.FeedForwardLayer(h, batch, UseCapacity);
        if (r != null) RoutingObserver?.Invoke(b, r);
    }

    /// <summary>
    /// Feeds new decoder tokens (sequence s gets <paramref name="tokens"/>[s], appended after what it has
    /// decoded so far) and returns the final decoder hidden states [new tokens, d_model].
    /// </summary>
    public float[] DecodeHidden(IReadOnlyList<int[]> tokens, DecoderState state)
    {
        if (tokens.Count != state.Sequences) throw new ArgumentException("one token list per sequence");
        var batch = new SequenceBatch(tokens.Select(s => s.Length).ToArray());
        var h = Embed(Concat(tokens));
        for (int i = 0; i < Decoder.Length; i++) DecoderBlock(i, h, batch, state);
        _decFinal.Forward(h, batch.Tokens, h);
        return h;
    }

    /// <summary>LM head: logits [tokens, vocab] of final decoder states (scaled by d_model^-0.5 when embeddings are tied).</summary>
    public float[] Logits(float[] hidden, int tokens)
    {
        var logits = new float[checked((long)tokens * _lmHead.Rows)];
        Logits(hidden, tokens, logits);
        return logits;
    }

    /// <summary>As <see cref="Logits(float[], int)"/>, into <paramref name="logits"/> [tokens, vocab]; scales <paramref name="hidden"/> in place.</summary>
    public void Logits(float[] hidden, int tokens, Span<float> logits)
    {
        if (_lmScale != 1f) System.Numerics.Tensors.TensorPrimitives.Multiply(hidden, _lmScale, hidden);
        Linear.Forward(hidden, tokens, _lmHead, logits);
    }

    /// <summary>Teacher-forced logits [Σ decoder lengths, vocab] for encoder inputs and decoder inputs.</summary>
    public float[] Forward(IReadOnlyList<int[]> inputIds, IReadOnlyList<int[]> decoderInputIds)
    {
        var encBatch = new SequenceBatch(inputIds.Select(s => s.Length).ToArray());
        var enc = Encode(inputIds);
        var state = StartDecoder(enc, encBatch);
        var h = DecodeHidden(decoderInputIds, state);
        return Logits(h, decoderInputIds.Sum(s => s.Length));
    }

    public void Dispose() => Store.Dispose();
}
