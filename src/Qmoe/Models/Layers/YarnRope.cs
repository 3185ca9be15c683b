namespace Qmoe.Models.Layers;

/// <summary>
/// YaRN rope scaling as Hugging Face computes it (<c>_compute_yarn_parameters</c>, and the DeepSeek attention's
/// softmax-scale adjustment): inverse frequencies blend interpolated (θ^(2i/d)·factor)⁻¹ and extrapolated
/// (θ^(2i/d))⁻¹ frequencies over a linear ramp between the correction dims of beta_fast and beta_slow
/// rotations in original_max_position_embeddings; cos/sin are scaled by the attention factor
/// (get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim) when both are set, else get_mscale(factor)).
/// Tensors are f32 as in HF; the scalar parts are f64 (Python floats).
/// </summary>
public static class YarnRope
{
    /// <summary>get_mscale / yarn_get_mscale: 0.1·m·ln(scale) + 1, or 1 when scale ≤ 1.</summary>
    public static double GetMscale(double scale, double mscale = 1) => scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;

    /// <summary>The rotary embedding of head dim <paramref name="dim"/> for the given YaRN settings.</summary>
    public static RotaryEmbedding Create(int dim, double theta, RopeScaling s, bool interleaved)
    {
        var (inv, attn) = Parameters(dim, theta, s);
        return new RotaryEmbedding(inv, (float)attn, interleaved);
    }

    /// <summary>(inv_freq [dim/2], attention_factor).</summary>
    public static (float[] InvFreq, double AttentionFactor) Parameters(int dim, double theta, RopeScaling s)
    {
        if (dim <= 0 || dim % 2 != 0) throw new ArgumentException($"rotary dim {dim} must be even and positive");
        double factor = s.Factor;
        double attention = s.AttentionFactor
            ?? (s.Mscale is double m && m != 0 && s.MscaleAllDim is double ma && ma != 0
                ? GetMscale(factor, m) / GetMscale(factor, ma)
                : GetMscale(factor));
        double CorrectionDim(double rotations) =>
            dim * Math.Log(s.OriginalMaxPositions / (rotations * 2 * Math.PI)) / (2 * Math.Log(theta));
        double low = CorrectionDim(s.BetaFast), high = CorrectionDim(s.BetaSlow);
        if (s.Truncate) { low = Math.Floor(low); high = Math.Ceiling(high); }
        low = Math.Max(low, 0); high = Math.Min(high, dim - 1);
        if (low == high) high += 0.001; // HF: prevent a singular ramp
        int half = dim / 2;
        var inv = new float[half];
        for (int i = 0; i < half; i++)
        {
            float posFreq = MathF.Pow((float)theta, (float)(2 * i) / dim);
            float extrapolation = 1f / posFreq;
            float interpolation = 1f / ((float)factor * posFreq);
            float ramp = Math.Clamp((float)((i - low) / (high - low)), 0f, 1f);
            float extrapolationFactor = 1f - ramp;
            inv[i] = interpolation * (1f - extrapolationFactor) + extrapolation * extrapolationFactor;
        }
        return (inv, attention);
    }
}
