namespace Qmoe.Quantization;

/// <summary>
/// Seeded random expert-shaped layers for benchmarks: weights W [rows, cols] ~ N(0, 1/cols) and correlated inputs
/// X [tokens, cols] = Z·diag(s) + U·V (per-column scales s, a rank-16 shared component U·V), with H = 2/n·XᵀX.
/// </summary>
internal sealed class SyntheticLayer
{
    public required float[] W { get; init; }
    public required float[] X { get; init; }
    public required float[] H { get; init; }
    public int Rows { get; init; }
    public int Cols { get; init; }
    public int Tokens { get; init; }

    public static SyntheticLayer Create(int rows, int cols, int tokens, int seed, int threads = 0)
    {
        var rng = new Random(seed);
        var x = CorrelatedInputs(rng, tokens, cols);
        var acc2 = new HessianAccumulator(cols, threads);
        acc2.Add(x, tokens);
        return new SyntheticLayer { W = Gaussian(rng, rows * cols, 1f / MathF.Sqrt(cols)), X = x, H = acc2.ToHessian(), Rows = rows, Cols = cols, Tokens = tokens };
    }

    /// <summary>Correlated inputs X [tokens, cols] = Z·diag(s) + U·V: per-column scales s = e^U(−1,1) and a rank-16 shared component.</summary>
    public static float[] CorrelatedInputs(Random rng, int tokens, int cols)
    {
        const int Rank = 16;
        var s = new float[cols];
        for (int j = 0; j < cols; j++) s[j] = (float)Math.Exp(rng.NextDouble() * 2 - 1);
        var v = Gaussian(rng, Rank * cols, 1f);
        var x = new float[tokens * cols];
        var u = new float[Rank];
        for (int t = 0; t < tokens; t++)
        {
            for (int r = 0; r < Rank; r++) u[r] = Gaussian(rng);
            for (int j = 0; j < cols; j++)
            {
                float acc = Gaussian(rng) * s[j];
                for (int r = 0; r < Rank; r++) acc += u[r] * v[r * cols + j];
                x[t * cols + j] = acc;
            }
        }
        return x;
    }

    private static float Gaussian(Random rng) =>
        (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    private static float[] Gaussian(Random rng, int n, float scale)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = Gaussian(rng) * scale;
        return a;
    }
}
