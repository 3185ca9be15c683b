using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace Qmoe.Numerics;

/// <summary>Cholesky factorisation of symmetric positive-definite matrices (blocked, GEMM-based, f32).</summary>
public static unsafe class Cholesky
{
    private const int BlockSize = 128;

    /// <summary>
    /// In place: the lower triangle of a [n, n] (row-major; only the lower triangle is read) becomes L with
    /// A = L·Lᵀ, the strictly upper triangle becomes zero. Returns false when A is not (numerically) positive
    /// definite; a is then partly overwritten.
    /// </summary>
    public static bool TryFactor(Span<float> a, int n, int threads = 0)
    {
        Gemm.CheckOperand("A", false, n, n, a.Length, n);
        fixed (float* p = a)
        {
            if (!Factor(p, n, threads)) return false;
        }
        for (int i = 0; i < n; i++) a.Slice(i * n + i + 1, n - i - 1).Clear();
        return true;
    }

    /// <summary>
    /// The upper Cholesky factor U of H⁻¹ (H⁻¹ = Uᵀ·U, U upper triangular), what GPTQ calls Hinv, written to u [n, n].
    /// Computed without forming H⁻¹: with J the reversal permutation, chol(J·H·J) = L' gives U = J·L'⁻¹·J
    /// (one Cholesky and one triangular inverse instead of PyTorch's three factorisations). False when H is not
    /// positive definite.
    /// </summary>
    public static bool TryInverseUpperFactor(ReadOnlySpan<float> h, int n, Span<float> u, int threads = 0)
    {
        Gemm.CheckOperand("H", false, n, n, h.Length, n);
        Gemm.CheckOperand("U", false, n, n, u.Length, n);
        h[..(n * n)].CopyTo(u);
        return TryInverseUpperFactorInPlace(u, n, threads);
    }

    /// <summary>
    /// <see cref="TryInverseUpperFactor"/> in place: a [n, n] holds H and becomes U (partly overwritten when false).
    /// <paramref name="scratch"/>: work space of <see cref="TriangularInverse.ScratchFloats"/>(n) floats or more (any
    /// contents, overwritten; e.g. an output buffer not yet written), or empty to allocate it.
    /// </summary>
    public static bool TryInverseUpperFactorInPlace(Span<float> a, int n, int threads = 0, Span<float> scratch = default)
    {
        Gemm.CheckOperand("H", false, n, n, a.Length, n);
        var aa = a[..(n * n)];
        aa.Reverse(); // row-major n x n: reversing the flat array maps (i, j) to (n-1-i, n-1-j)
        if (!TryFactor(aa, n, threads) || !TriangularInverse.InvertLower(aa, n, threads, scratch)) return false;
        aa.Reverse();
        return true;
    }

    // Right-looking blocked factorisation of the lower triangle of a (n x n, stride n).
    private static bool Factor(float* a, int n, int threads)
    {
        var inv = new float[BlockSize * BlockSize];
        // Diagonal blocks are BlockSize (or n) wide, the last one n % BlockSize: one triangular-inverse scratch for all.
        var invScratch = new float[Math.Max(TriangularInverse.ScratchFloats(Math.Min(BlockSize, n)), TriangularInverse.ScratchFloats(n % BlockSize))];
        float[]? panel = null;
        for (int k0 = 0; k0 < n; k0 += BlockSize)
        {
            int kb = Math.Min(BlockSize, n - k0), rest = n - k0 - kb;
            float* d = a + (long)k0 * n + k0;
            if (!FactorUnblocked(d, kb, n)) return false;
            if (rest == 0) break;
            // Panel: L21 = A21 · L11⁻ᵀ.
            for (int i = 0; i < kb; i++)
                for (int j = 0; j < kb; j++) inv[i * kb + j] = j <= i ? d[(long)i * n + j] : 0f;
            fixed (float* pinv = inv, pt = invScratch)
            {
                if (!TriangularInverse.Invert(pinv, kb, kb, threads, pt)) return false;
                panel ??= new float[(n - kb) * BlockSize];
                float* a21 = a + (long)(k0 + kb) * n + k0;
                fixed (float* pp = panel)
                {
                    for (int i = 0; i < rest; i++)
                        new ReadOnlySpan<float>(a21 + (long)i * n, kb).CopyTo(new Span<float>(pp + i * kb, kb));
                    Gemm.Run(new GemmOperand(pp, kb, false, false), new GemmOperand(pinv, kb, true, false), rest, kb, kb, 1f, 0f, a21, n, threads);
                }
                // Trailing update, lower triangle only: A22 -= L21 · L21ᵀ.
                Gemm.Run(new GemmOperand(a21, n, false, false), new GemmOperand(a21, n, true, false), rest, rest, kb, -1f, 1f,
                    a + (long)(k0 + kb) * n + k0 + kb, n, threads, GemmStructure.LowerC);
            }
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static bool FactorUnblocked(float* a, int n, int ld)
    {
        for (int j = 0; j < n; j++)
        {
            var rowJ = new ReadOnlySpan<float>(a + (long)j * ld, j);
            float djj = a[(long)j * ld + j] - TensorPrimitives.Dot(rowJ, rowJ);
            if (!(djj > 0f) || !float.IsFinite(djj)) return false;
            float ljj = MathF.Sqrt(djj);
            a[(long)j * ld + j] = ljj;
            for (int i = j + 1; i < n; i++)
                a[(long)i * ld + j] = (a[(long)i * ld + j] - TensorPrimitives.Dot(new ReadOnlySpan<float>(a + (long)i * ld, j), rowJ)) / ljj;
        }
        return true;
    }
}
