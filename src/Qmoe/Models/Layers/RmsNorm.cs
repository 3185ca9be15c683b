namespace Qmoe.Models.Layers;

/// <summary>
/// RMS layer norm without mean subtraction or bias (T5 and Mixtral): y = w · x / sqrt(mean(x²) + eps),
/// variance accumulated in f32 sequentially as PyTorch's reduction does for these widths.
/// </summary>
public sealed class RmsNorm
{
    private readonly float[] _weight;
    private readonly float _eps;

    public RmsNorm(float[] weight, float eps) { _weight = weight; _eps = eps; }

    public int Dim => _weight.Length;

    /// <summary>x, y: [m, Dim]; y may alias x.</summary>
    public void Forward(ReadOnlySpan<float> x, int m, Span<float> y)
    {
        int d = _weight.Length;
        for (int t = 0; t < m; t++)
        {
            var xr = x.Slice(t * d, d);
            var yr = y.Slice(t * d, d);
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)xr[i] * xr[i];
            float variance = (float)(ss / d);
            float inv = 1f / MathF.Sqrt(variance + _eps);
            for (int i = 0; i < d; i++) yr[i] = _weight[i] * (xr[i] * inv);
        }
    }

    public float[] Forward(ReadOnlySpan<float> x, int m)
    {
        var y = new float[m * _weight.Length];
        Forward(x, m, y);
        return y;
    }
}
