namespace Qmoe.Models.Qwen3Moe;

/// <summary>
/// The fields of a Hugging Face <c>Qwen3MoeConfig</c> that the runtime uses, validated: what it does not implement
/// (a rope_scaling type other than YaRN, attention biases, sliding-window attention, tied embeddings, a non-SiLU
/// activation) is refused with the field named.
/// </summary>
public sealed record Qwen3MoeConfig
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    /// <summary>Dense MLP width (layers in mlp_only_layers or off the decoder_sparse_step).</summary>
    public required int IntermediateSize { get; init; }
    public required int MoeIntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int NumExperts { get; init; }
    public required int ExpertsPerToken { get; init; }
    public required bool NormTopkProb { get; init; }
    public required int DecoderSparseStep { get; init; }
    public required int[] MlpOnlyLayers { get; init; }
    public required float RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    public RopeScaling? RopeScaling { get; init; }
    public required int[] EosTokenIds { get; init; }
    /// <summary>FP8 block size of a quantization_config fp8 checkpoint (null: unquantized).</summary>
    public (int Rows, int Cols)? Fp8Block { get; init; }

    public int QWidth => NumHeads * HeadDim;
    public int KvWidth => NumKvHeads * HeadDim;

    /// <summary>HF's rule: a layer is sparse unless listed in mlp_only_layers, when experts exist and (i+1) % decoder_sparse_step == 0.</summary>
    public bool IsSparse(int layer) =>
        !MlpOnlyLayers.Contains(layer) && NumExperts > 0 && (layer + 1) % DecoderSparseStep == 0;

    public static Qwen3MoeConfig Load(string modelDir) => From(ConfigReader.Load(modelDir), modelDir);

    public static Qwen3MoeConfig From(ConfigReader c, string modelDir)
    {
        if (c.ModelType != "qwen3_moe") throw new QmoeException($"{c.Path}: model_type '{c.ModelType}' is not qwen3_moe");
        c.RefuseUnsupportedDecoderFields();
        if (c.Bool("use_sliding_window", false)) throw new QmoeException($"{c.Path}: use_sliding_window = true is not supported (full attention only)");
        int heads = c.Int("num_attention_heads"), hidden = c.Int("hidden_size");
        c.RequirePositive(("num_attention_heads", heads), ("hidden_size", hidden));
        var cfg = new Qwen3MoeConfig
        {
            VocabSize = c.Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = c.Int("intermediate_size"),
            MoeIntermediateSize = c.Int("moe_intermediate_size"),
            NumLayers = c.Int("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = c.Int("num_key_value_heads", heads),
            HeadDim = c.Int("head_dim", hidden / heads),
            NumExperts = c.Int("num_experts"),
            ExpertsPerToken = c.Int("num_experts_per_tok"),
            NormTopkProb = c.Bool("norm_topk_prob", false),
            DecoderSparseStep = c.Int("decoder_sparse_step", 1),
            MlpOnlyLayers = c.IntOrList("mlp_only_layers"),
            RmsNormEps = (float)c.Double("rms_norm_eps", 1e-6),
            RopeTheta = c.Double("rope_theta", 10000),
            RopeScaling = RopeScaling.From(c),
            EosTokenIds = c.EosTokenIds(modelDir),
            Fp8Block = QuantizationConfig.Fp8Block(c),
        };
        c.RequirePositive(("vocab_size", cfg.VocabSize), ("intermediate_size", cfg.IntermediateSize),
            ("moe_intermediate_size", cfg.MoeIntermediateSize), ("num_hidden_layers", cfg.NumLayers),
            ("num_key_value_heads", cfg.NumKvHeads), ("head_dim", cfg.HeadDim), ("num_experts", cfg.NumExperts),
            ("num_experts_per_tok", cfg.ExpertsPerToken), ("decoder_sparse_step", cfg.DecoderSparseStep));
        c.CheckGroupedQueryAttention(cfg.NumHeads, cfg.NumKvHeads, cfg.HeadDim);
        if (cfg.ExpertsPerToken > cfg.NumExperts)
            throw new QmoeException($"{c.Path}: num_experts_per_tok {cfg.ExpertsPerToken} exceeds num_experts {cfg.NumExperts}");
        return cfg;
    }
}
