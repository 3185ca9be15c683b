namespace Qmoe.Tests.Numerics;

/// <summary>Seeded random matrices for the numerics and quantization tests.</summary>
internal static class RandomMatrices
{
    public static float[] Uniform(Random rng, int count, float scale = 1f)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static float[] Gaussian(Random rng, int count)
    {
        var a = new float[count];
        for (int i = 0; i < count; i++)
            a[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        return a;
    }

    /// <summary>Correlated inputs X [tokens, cols]: Gaussian times a random mixing matrix, plus per-column scales.</summary>
    public static float[] CorrelatedInputs(Random rng, int tokens, int cols)
    {
        var z = Gaussian(rng, tokens * cols);
        var mix = Gaussian(rng, cols * cols);
        var scale = new float[cols];
        for (int j = 0; j < cols; j++) scale[j] = (float)Math.Exp(rng.NextDouble() * 2 - 1);
        var x = new float[tokens * cols];
        Qmoe.Numerics.Gemm.Multiply(false, false, tokens, cols, cols, 1f / MathF.Sqrt(cols), z, cols, mix, cols, 0f, x, cols, 1);
        for (int t = 0; t < tokens; t++)
            for (int j = 0; j < cols; j++) x[t * cols + j] = x[t * cols + j] * scale[j] + 0.3f * z[t * cols + j];
        return x;
    }

    /// <summary>A well-conditioned SPD matrix A·Aᵀ/k + n·0.01·I (double accumulation).</summary>
    public static float[] Spd(Random rng, int n)
    {
        int k = n + 8;
        var a = Gaussian(rng, n * k);
        var s = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double d = 0;
                for (int p = 0; p < k; p++) d += (double)a[i * k + p] * a[j * k + p];
                s[i * n + j] = s[j * n + i] = (float)(d / k + (i == j ? 0.1 : 0));
            }
        return s;
    }
}
