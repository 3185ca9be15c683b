namespace Qmoe.Models;

/// <summary>
/// A config's <c>rope_scaling</c>, validated. Only YaRN is implemented (real DeepSeek-V3 / Kimi-K2 / long-context
/// Qwen3 configs); any other type is refused by name.
/// </summary>
public sealed record RopeScaling
{
    public required string Type { get; init; }
    public required double Factor { get; init; }
    public required int OriginalMaxPositions { get; init; }
    public double BetaFast { get; init; } = 32;
    public double BetaSlow { get; init; } = 1;
    public double? Mscale { get; init; }
    public double? MscaleAllDim { get; init; }
    public double? AttentionFactor { get; init; }
    public bool Truncate { get; init; } = true;

    /// <summary>
    /// Parses <c>rope_scaling</c> of <paramref name="c"/>; null when absent or null. HF versions disagree when
    /// <c>factor</c> differs from max_position_embeddings / original_max_position_embeddings (4.5x uses the ratio,
    /// later ones the factor), so such a config is refused rather than guessed.
    /// </summary>
    public static RopeScaling? From(ConfigReader c)
    {
        var r = c.Object("rope_scaling");
        if (r == null) return null;
        string type = r.Has("rope_type") ? r.String("rope_type") : r.String("type");
        if (type == "default") return null;
        if (type != "yarn")
            throw new QmoeException($"{c.Path}: rope_scaling type '{type}' is not supported (only yarn)");
        double factor = r.Double("factor");
        if (!(factor >= 1)) throw new QmoeException($"{r.Path}: field 'factor' = {factor} must be at least 1");
        int maxPos = c.Int("max_position_embeddings");
        int original = r.Int("original_max_position_embeddings", maxPos);
        if (original <= 0) throw new QmoeException($"{r.Path}: field 'original_max_position_embeddings' must be positive");
        if (r.Has("original_max_position_embeddings") && Math.Abs((double)maxPos / original - factor) > 1e-9 * factor)
            throw new QmoeException($"{r.Path}: factor {factor} differs from max_position_embeddings / original_max_position_embeddings = {maxPos}/{original}, which transformers versions treat differently; not supported");
        var s = new RopeScaling
        {
            Type = type,
            Factor = factor,
            OriginalMaxPositions = original,
            BetaFast = r.Has("beta_fast") && r.Double("beta_fast") != 0 ? r.Double("beta_fast") : 32,
            BetaSlow = r.Has("beta_slow") && r.Double("beta_slow") != 0 ? r.Double("beta_slow") : 1,
            Mscale = r.Has("mscale") ? r.Double("mscale") : null,
            MscaleAllDim = r.Has("mscale_all_dim") ? r.Double("mscale_all_dim") : null,
            AttentionFactor = r.Has("attention_factor") ? r.Double("attention_factor") : null,
            Truncate = r.Bool("truncate", true),
        };
        if (!(s.BetaFast > 0 && s.BetaSlow > 0)) throw new QmoeException($"{r.Path}: beta_fast and beta_slow must be positive");
        return s;
    }
}
