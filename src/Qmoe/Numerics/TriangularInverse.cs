using System.Runtime.CompilerServices;
namespace Qmoe.Numerics;

/// <summary>Inverse of a lower-triangular matrix, recursive so that almost all work is GEMM.</summary>
public static unsafe class TriangularInverse
{
    private const int BaseSize = 64;

    /// <summary>
    /// Replaces the lower triangle of l [n, n] (row-major) by the lower triangle of its inverse and sets the
    /// strictly upper triangle to zero. Returns false (l partly overwritten) when a diagonal entry is zero or not finite.
    /// <paramref name="scratch"/>: at least <see cref="ScratchFloats"/>(n) floats of work space (any contents, overwritten),
    /// or empty to allocate it.
    /// </summary>
    public static bool InvertLower(Span<float> l, int n, int threads = 0, Span<float> scratch = default)
    {
        Gemm.CheckOperand("L", false, n, n, l.Length, n);
        long need = ScratchFloats(n);
        if (scratch.IsEmpty) scratch = new float[need];
        else if (scratch.Length < need) throw new ArgumentException($"TriangularInverse: scratch of {scratch.Length} floats, needs {need}");
        for (int i = 0; i < n; i++) l.Slice(i * n + i + 1, n - i - 1).Clear();
        fixed (float* p = l, t = scratch) return Invert(p, n, n, threads, t);
    }

    /// <summary>Work space <see cref="InvertLower"/> needs for an [n, n] matrix: the largest n2 x n1 product of its
    /// recursion (the top level's, about n²/4), shared by all levels since each finishes with it before its parent.</summary>
    public static long ScratchFloats(int n)
    {
        if (n <= BaseSize) return 0;
        var (n1, n2) = Split(n);
        return Math.Max((long)n2 * n1, Math.Max(ScratchFloats(n1), ScratchFloats(n2)));
    }

    private static (int N1, int N2) Split(int n)
    {
        int n1 = (n / 2 + 31) / 32 * 32;
        return (n1, n - n1);
    }

    // X = L⁻¹ in place for the n x n block at a (row stride ld), upper triangle of the block zero; t: ScratchFloats(n).
    // [L11 0; L21 L22]⁻¹ = [X11 0; -X22·L21·X11 X22].
    internal static bool Invert(float* a, int n, int ld, int threads, float* t)
    {
        if (n <= BaseSize) return InvertUnblocked(a, n, ld);
        var (n1, n2) = Split(n);
        if (!Invert(a, n1, ld, threads, t) || !Invert(a + (long)n1 * ld + n1, n2, ld, threads, t)) return false;
        float* l21 = a + (long)n1 * ld;
        Gemm.Run(new GemmOperand(l21, ld, false, false), new GemmOperand(a, ld, false, false), n2, n1, n1, 1f, 0f, t, n1, threads, GemmStructure.LowerB);
        Gemm.Run(new GemmOperand(a + (long)n1 * ld + n1, ld, false, false), new GemmOperand(t, n1, false, false), n2, n1, n2, -1f, 0f, l21, ld, threads, GemmStructure.LowerA);
        return true;
    }

    // Column by column from the right: column j of X is -X[j+1:, j+1:] · L[j+1:, j] / L[j, j].
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static bool InvertUnblocked(float* a, int n, int ld)
    {
        for (int j = n - 1; j >= 0; j--)
        {
            float d = a[(long)j * ld + j];
            if (d == 0f || !float.IsFinite(d)) return false;
            float inv = 1f / d;
            a[(long)j * ld + j] = inv;
            // Bottom-up so that a[p, j] (p < i) is still the original L entry when row i is computed.
            for (int i = n - 1; i > j; i--)
            {
                float s = 0f;
                for (int p = j + 1; p <= i; p++) s += a[(long)i * ld + p] * a[(long)p * ld + j];
                a[(long)i * ld + j] = -s * inv;
            }
        }
        return true;
    }
}
