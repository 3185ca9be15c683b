namespace Qmoe.Numerics;

/// <summary>
/// Plain scalar implementations (double accumulation, textbook loops) that define the truth for the tests of
/// <see cref="Gemm"/>, <see cref="Cholesky"/>, <see cref="TriangularInverse"/> and <see cref="MatMul"/>.
/// </summary>
internal static class NumericsReference
{
    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                    s += (double)(transA ? a[p * lda + i] : a[i * lda + p]) * (transB ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * ldc + j] = (float)(alpha * s + (beta == 0f ? 0.0 : (double)beta * c[i * ldc + j]));
            }
    }

    /// <summary>Lower L with A = L·Lᵀ (in double), or null when A is not positive definite.</summary>
    public static double[]? Cholesky(ReadOnlySpan<float> a, int n)
    {
        var l = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            double d = a[j * n + j];
            for (int p = 0; p < j; p++) d -= l[j * n + p] * l[j * n + p];
            if (!(d > 0)) return null;
            l[j * n + j] = Math.Sqrt(d);
            for (int i = j + 1; i < n; i++)
            {
                double s = a[i * n + j];
                for (int p = 0; p < j; p++) s -= l[i * n + p] * l[j * n + p];
                l[i * n + j] = s / l[j * n + j];
            }
        }
        return l;
    }

    /// <summary>Inverse of a lower-triangular matrix by forward substitution on the unit vectors.</summary>
    public static double[] InvertLower(ReadOnlySpan<double> l, int n)
    {
        var x = new double[n * n];
        for (int c = 0; c < n; c++)
            for (int i = c; i < n; i++)
            {
                double s = i == c ? 1.0 : 0.0;
                for (int p = c; p < i; p++) s -= l[i * n + p] * x[p * n + c];
                x[i * n + c] = s / l[i * n + i];
            }
        return x;
    }

    /// <summary>GPTQ's Hinv as PyTorch computes it: U upper with H⁻¹ = Uᵀ·U, via H⁻¹ = L⁻ᵀ·L⁻¹ and a second Cholesky.</summary>
    public static double[]? InverseUpperFactor(ReadOnlySpan<float> h, int n)
    {
        var l = Cholesky(h, n);
        if (l == null) return null;
        var x = InvertLower(l, n);
        var hinv = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = Math.Max(i, j); p < n; p++) s += x[p * n + i] * x[p * n + j];
                hinv[i * n + j] = (float)s;
            }
        var l2 = Cholesky(hinv, n);
        if (l2 == null) return null;
        var u = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) u[i * n + j] = l2[j * n + i];
        return u;
    }

    public static void XWt(ReadOnlySpan<float> x, Func<int, float> w, Span<float> y, int m, int n, int k)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)x[i * k + p] * w(j * k + p);
                y[i * n + j] = (float)s;
            }
    }
}
