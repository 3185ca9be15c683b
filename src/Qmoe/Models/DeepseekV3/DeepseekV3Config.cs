namespace Qmoe.Models.DeepseekV3;

/// <summary>
/// The fields of a Hugging Face <c>DeepseekV3Config</c> (model_type deepseek_v3, or kimi_k2 for Kimi-K2, the same
/// architecture) that the runtime uses, validated: a scoring_func other than sigmoid, a topk_method other than
/// noaux_tc, a rope_scaling type other than YaRN, a quantization method other than block FP8, attention biases,
/// tied embeddings or a non-SiLU activation are refused with the field and value named.
/// </summary>
public sealed record DeepseekV3Config
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int MoeIntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    /// <summary>Null: queries come from q_proj directly (DeepSeek-V2-Lite style), else q_a_proj → q_a_layernorm → q_b_proj.</summary>
    public int? QLoraRank { get; init; }
    public required int KvLoraRank { get; init; }
    public required int QkNopeHeadDim { get; init; }
    public required int QkRopeHeadDim { get; init; }
    public required int VHeadDim { get; init; }
    public required int NumRoutedExperts { get; init; }
    public required int NumSharedExperts { get; init; }
    public required int ExpertsPerToken { get; init; }
    public required int NumGroups { get; init; }
    public required int TopkGroups { get; init; }
    public required bool NormTopkProb { get; init; }
    public required double RoutedScalingFactor { get; init; }
    public required int FirstKDenseReplace { get; init; }
    public required int MoeLayerFreq { get; init; }
    public required float RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    public required bool RopeInterleave { get; init; }
    public RopeScaling? RopeScaling { get; init; }
    public (int Rows, int Cols)? Fp8Block { get; init; }
    public required int[] EosTokenIds { get; init; }

    public int QkHeadDim => QkNopeHeadDim + QkRopeHeadDim;

    /// <summary>DeepSeek's rule: routed experts exist, i ≥ first_k_dense_replace and i % moe_layer_freq == 0.</summary>
    public bool IsSparse(int layer) => NumRoutedExperts > 0 && layer >= FirstKDenseReplace && layer % MoeLayerFreq == 0;

    /// <summary>
    /// Softmax scale qk_head_dim^-½, times mscale² with mscale = yarn_get_mscale(factor, mscale_all_dim) when YaRN
    /// sets mscale_all_dim (DeepSeek's attention; HF <c>DeepseekV3Attention.scaling</c>).
    /// </summary>
    public float SoftmaxScale()
    {
        double scale = Math.Pow(QkHeadDim, -0.5);
        if (RopeScaling is { MscaleAllDim: double all } s && all != 0)
        {
            double m = Layers.YarnRope.GetMscale(s.Factor, all);
            scale *= m * m;
        }
        return (float)scale;
    }

    public static DeepseekV3Config Load(string modelDir) => From(ConfigReader.Load(modelDir), modelDir);

    public static DeepseekV3Config From(ConfigReader c, string modelDir)
    {
        if (c.ModelType is not ("deepseek_v3" or "kimi_k2"))
            throw new QmoeException($"{c.Path}: model_type '{c.ModelType}' is not deepseek_v3 or kimi_k2");
        c.RefuseUnsupportedDecoderFields();
        string scoring = c.String("scoring_func", "sigmoid");
        if (scoring != "sigmoid") throw new QmoeException($"{c.Path}: scoring_func '{scoring}' is not supported (only sigmoid)");
        string topk = c.String("topk_method", "noaux_tc");
        if (topk != "noaux_tc") throw new QmoeException($"{c.Path}: topk_method '{topk}' is not supported (only noaux_tc)");
        var cfg = new DeepseekV3Config
        {
            VocabSize = c.Int("vocab_size"),
            HiddenSize = c.Int("hidden_size"),
            IntermediateSize = c.Int("intermediate_size"),
            MoeIntermediateSize = c.Int("moe_intermediate_size"),
            NumLayers = c.Int("num_hidden_layers"),
            NumHeads = c.Int("num_attention_heads"),
            QLoraRank = c.NullableInt("q_lora_rank"),
            KvLoraRank = c.Int("kv_lora_rank"),
            QkNopeHeadDim = c.Int("qk_nope_head_dim"),
            QkRopeHeadDim = c.Int("qk_rope_head_dim"),
            VHeadDim = c.Int("v_head_dim"),
            NumRoutedExperts = c.Int("n_routed_experts"),
            NumSharedExperts = c.Int("n_shared_experts", 0),
            ExpertsPerToken = c.Int("num_experts_per_tok"),
            NumGroups = c.Int("n_group", 1),
            TopkGroups = c.Int("topk_group", 1),
            NormTopkProb = c.Bool("norm_topk_prob", true),
            RoutedScalingFactor = c.Double("routed_scaling_factor", 1.0),
            FirstKDenseReplace = c.Int("first_k_dense_replace", 0),
            MoeLayerFreq = c.Int("moe_layer_freq", 1),
            RmsNormEps = (float)c.Double("rms_norm_eps", 1e-6),
            RopeTheta = c.Double("rope_theta", 10000),
            RopeInterleave = c.Bool("rope_interleave", true),
            RopeScaling = RopeScaling.From(c),
            Fp8Block = QuantizationConfig.Fp8Block(c),
            EosTokenIds = c.EosTokenIds(modelDir),
        };
        c.RequirePositive(("vocab_size", cfg.VocabSize), ("hidden_size", cfg.HiddenSize), ("intermediate_size", cfg.IntermediateSize),
            ("moe_intermediate_size", cfg.MoeIntermediateSize), ("num_hidden_layers", cfg.NumLayers),
            ("num_attention_heads", cfg.NumHeads), ("kv_lora_rank", cfg.KvLoraRank), ("qk_nope_head_dim", cfg.QkNopeHeadDim),
            ("qk_rope_head_dim", cfg.QkRopeHeadDim), ("v_head_dim", cfg.VHeadDim), ("n_routed_experts", cfg.NumRoutedExperts),
            ("num_experts_per_tok", cfg.ExpertsPerToken), ("n_group", cfg.NumGroups), ("topk_group", cfg.TopkGroups),
            ("moe_layer_freq", cfg.MoeLayerFreq));
        if (cfg.QLoraRank is <= 0) throw new QmoeException($"{c.Path}: q_lora_rank = {cfg.QLoraRank} must be positive or null");
        if (cfg.QkRopeHeadDim % 2 != 0) throw new QmoeException($"{c.Path}: qk_rope_head_dim {cfg.QkRopeHeadDim} must be even for rotary embeddings");
        if (cfg.NumRoutedExperts % cfg.NumGroups != 0 || cfg.NumRoutedExperts / cfg.NumGroups < 2)
            throw new QmoeException($"{c.Path}: n_routed_experts {cfg.NumRoutedExperts} must split into n_group {cfg.NumGroups} groups of at least 2");
        if (cfg.TopkGroups > cfg.NumGroups) throw new QmoeException($"{c.Path}: topk_group {cfg.TopkGroups} exceeds n_group {cfg.NumGroups}");
        if (cfg.ExpertsPerToken > cfg.TopkGroups * (cfg.NumRoutedExperts / cfg.NumGroups))
            throw new QmoeException($"{c.Path}: num_experts_per_tok {cfg.ExpertsPerToken} exceeds the experts in topk_group {cfg.TopkGroups} groups");
        if (!(cfg.RoutedScalingFactor > 0)) throw new QmoeException($"{c.Path}: routed_scaling_factor = {cfg.RoutedScalingFactor} must be positive");
        return cfg;
    }
}
