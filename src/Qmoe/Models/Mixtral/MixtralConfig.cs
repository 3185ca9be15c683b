namespace Qmoe.Models.Mixtral;

/// <summary>
/// The fields of a Hugging Face <c>MixtralConfig</c> that the runtime uses, validated: anything it does not
/// implement (rope_scaling, a non-SiLU activation, a sliding window shorter than the positions it must serve,
/// tied embeddings, ...) is refused with the field named.
/// </summary>
public sealed record MixtralConfig
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumLayers { get; init; }
    public required int NumHeads { get; init; }
    public required int NumKvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int NumExperts { get; init; }
    public required int ExpertsPerToken { get; init; }
    public required float RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    public required int MaxPositions { get; init; }
    /// <summary>HF's sliding_window; null = full attention. Positions beyond it are refused, not windowed.</summary>
    public int? SlidingWindow { get; init; }
    public required int EosTokenId { get; init; }
    public required int PadTokenId { get; init; }

    public int QWidth => NumHeads * HeadDim;
    public int KvWidth => NumKvHeads * HeadDim;

    /// <summary>The longest sequence the runtime serves exactly (full causal attention): the sliding window, if any.</summary>
    public int MaxExactLength => SlidingWindow ?? int.MaxValue;

    /// <summary>Longest sequence generation runs to: max_position_embeddings, or the sliding window when shorter.</summary>
    public int MaxContext => Math.Min(MaxPositions, MaxExactLength);

    public static MixtralConfig Load(string modelDir) => From(ConfigReader.Load(modelDir));

    public static MixtralConfig From(ConfigReader c)
    {
        if (c.ModelType != MixtralFamily.Type) throw new QmoeException($"{c.Path}: model_type '{c.ModelType}' is not mixtral");
        c.RefuseUnsupportedDecoderFields();
        if (c.Has("rope_scaling")) throw new QmoeException($"{c.Path}: rope_scaling is not supported (only plain rotary embeddings)");
        int heads = c.Int("num_attention_heads"), hidden = c.Int("hidden_size");
        if (heads <= 0 || hidden % heads != 0) throw new QmoeException($"{c.Path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}");
        var cfg = new MixtralConfig
        {
            VocabSize = c.Int("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = c.Int("intermediate_size"),
            NumLayers = c.Int("num_hidden_layers"),
            NumHeads = heads,
            NumKvHeads = c.Int("num_key_value_heads", heads),
            HeadDim = c.Int("head_dim", hidden / heads),
            NumExperts = c.Int("num_local_experts"),
            ExpertsPerToken = c.Int("num_experts_per_tok"),
            RmsNormEps = (float)c.Double("rms_norm_eps", 1e-5),
            RopeTheta = c.Double("rope_theta", 1e6),
            MaxPositions = c.Int("max_position_embeddings", 32768),
            SlidingWindow = c.Has("sliding_window") ? c.Int("sliding_window") : null,
            EosTokenId = c.Int("eos_token_id", 2),
            PadTokenId = c.Has("pad_token_id") ? c.Int("pad_token_id") : 0,
        };
        foreach (var (name, v) in new[] { ("vocab_size", cfg.VocabSize), ("hidden_size", cfg.HiddenSize),
                     ("intermediate_size", cfg.IntermediateSize), ("num_hidden_layers", cfg.NumLayers),
                     ("num_key_value_heads", cfg.NumKvHeads), ("head_dim", cfg.HeadDim),
                     ("num_local_experts", cfg.NumExperts), ("num_experts_per_tok", cfg.ExpertsPerToken) })
            if (v <= 0) throw new QmoeException($"{c.Path}: {name} = {v} must be positive");
        c.CheckAtMost("num_hidden_layers", cfg.NumLayers, ConfigReader.MaxLayers);
        c.CheckAtMost("num_local_experts", cfg.NumExperts, ConfigReader.MaxExperts);
        c.CheckAtMost("num_attention_heads", cfg.NumHeads, ConfigReader.MaxExperts);
        c.CheckGroupedQueryAttention(cfg.NumHeads, cfg.NumKvHeads, cfg.HeadDim);
        if (cfg.ExpertsPerToken > cfg.NumExperts)
            throw new QmoeException($"{c.Path}: num_experts_per_tok {cfg.ExpertsPerToken} exceeds num_local_experts {cfg.NumExperts}");
        if (cfg.SlidingWindow is <= 0) throw new QmoeException($"{c.Path}: sliding_window = {cfg.SlidingWindow} must be positive or null");
        return cfg;
    }

    /// <summary>Refuses a sequence the runtime would not compute as HF does (beyond the sliding window).</summary>
    public void CheckLength(int length)
    {
        if (length > MaxExactLength)
            throw new QmoeException($"sequence of {length} tokens exceeds sliding_window {SlidingWindow}, which is not supported (full attention only)");
    }
}
