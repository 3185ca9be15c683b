namespace Qmoe.Models.Switch;

/// <summary>
/// The fields of a Hugging Face <c>SwitchTransformersConfig</c> that the runtime uses, validated: anything the
/// runtime does not implement (a non-ReLU feed-forward, router bias, untied embeddings, ...) is refused.
/// </summary>
public sealed record SwitchConfig
{
    public required int VocabSize { get; init; }
    public required int DModel { get; init; }
    public required int DKv { get; init; }
    public required int DFf { get; init; }
    public required int NumHeads { get; init; }
    public required int NumEncoderLayers { get; init; }
    public required int NumDecoderLayers { get; init; }
    public required int NumSparseEncoderLayers { get; init; }
    public required int NumSparseDecoderLayers { get; init; }
    public required int NumExperts { get; init; }
    public required int ExpertCapacity { get; init; }
    public required int RelativeAttentionNumBuckets { get; init; }
    public required int RelativeAttentionMaxDistance { get; init; }
    public required float LayerNormEpsilon { get; init; }
    public required int DecoderStartTokenId { get; init; }
    public required int EosTokenId { get; init; }
    public required int PadTokenId { get; init; }
    public required bool TieWordEmbeddings { get; init; }

    public int InnerDim => NumHeads * DKv;

    /// <summary>HF's rule: layer i is sparse when i % step == 1 or step == 1, step = layers / sparse layers.</summary>
    public static bool IsSparse(int layer, int numLayers, int numSparse)
    {
        if (numSparse <= 0) return false;
        int step = numLayers / numSparse;
        return step == 1 || layer % step == 1;
    }

    public bool IsSparseEncoderLayer(int i) => IsSparse(i, NumEncoderLayers, NumSparseEncoderLayers);
    public bool IsSparseDecoderLayer(int i) => IsSparse(i, NumDecoderLayers, NumSparseDecoderLayers);

    public static SwitchConfig Load(string modelDir) => From(ConfigReader.Load(modelDir));

    public static SwitchConfig From(ConfigReader c)
    {
        if (c.ModelType != SwitchFamily.Type)
            throw new QmoeException($"{c.Path}: model_type '{c.ModelType}' is not switch_transformers");
        string ff = c.String("feed_forward_proj", "relu");
        if (ff != "relu") throw new QmoeException($"{c.Path}: feed_forward_proj = {ff} is not supported (only relu)");
        string act = c.String("dense_act_fn", "relu");
        if (act != "relu") throw new QmoeException($"{c.Path}: dense_act_fn = {act} is not supported (only relu)");
        if (c.Bool("router_bias", false)) throw new QmoeException($"{c.Path}: router_bias = true is not supported");
        string rd = c.String("router_dtype", "float32");
        if (rd != "float32") throw new QmoeException($"{c.Path}: router_dtype = {rd} is not supported (only float32)");
        bool tie = c.Bool("tie_word_embeddings", true);
        int numLayers = c.Int("num_layers");
        var cfg = new SwitchConfig
        {
            VocabSize = c.Int("vocab_size"),
            DModel = c.Int("d_model"),
            DKv = c.Int("d_kv"),
            DFf = c.Int("d_ff"),
            NumHeads = c.Int("num_heads"),
            NumEncoderLayers = numLayers,
            NumDecoderLayers = c.Int("num_decoder_layers", numLayers),
            NumSparseEncoderLayers = c.Int("num_sparse_encoder_layers"),
            NumSparseDecoderLayers = c.Int("num_sparse_decoder_layers"),
            NumExperts = c.Int("num_experts"),
            ExpertCapacity = c.Int("expert_capacity"),
            RelativeAttentionNumBuckets = c.Int("relative_attention_num_buckets", 32),
            RelativeAttentionMaxDistance = c.Int("relative_attention_max_distance", 128),
            LayerNormEpsilon = (float)c.Double("layer_norm_epsilon", 1e-6),
            DecoderStartTokenId = c.Int("decoder_start_token_id", 0),
            EosTokenId = c.Int("eos_token_id", 1),
            PadTokenId = c.Int("pad_token_id", 0),
            TieWordEmbeddings = tie,
        };
        foreach (var (name, v) in new[] { ("vocab_size", cfg.VocabSize), ("d_model", cfg.DModel), ("d_kv", cfg.DKv),
                     ("d_ff", cfg.DFf), ("num_heads", cfg.NumHeads), ("num_layers", cfg.NumEncoderLayers),
                     ("num_decoder_layers", cfg.NumDecoderLayers), ("relative_attention_num_buckets", cfg.RelativeAttentionNumBuckets) })
            if (v <= 0) throw new QmoeException($"{c.Path}: {name} = {v} must be positive");
        if (cfg.NumSparseEncoderLayers + cfg.NumSparseDecoderLayers > 0 && cfg.NumExperts <= 0)
            throw new QmoeException($"{c.Path}: num_experts = {cfg.NumExperts} but the model has sparse layers");
        if (cfg.NumSparseEncoderLayers > cfg.NumEncoderLayers || cfg.NumSparseDecoderLayers > cfg.NumDecoderLayers)
            throw new QmoeException($"{c.Path}: more sparse layers than layers");
        return cfg;
    }
}
