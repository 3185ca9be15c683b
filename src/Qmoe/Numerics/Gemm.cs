using System.Runtime.InteropServices;

namespace Qmoe.Numerics;

/// <summary>
/// Multi-threaded, vectorised single-precision GEMM: C[m, n] = beta·C + alpha·op(A)·op(B), all row-major,
/// op(X) = X or Xᵀ. Blocked as in GotoBLAS (packed B panels of KC×NC shared by all threads, packed A blocks of
/// MC×KC per thread, a register-tiled micro-kernel). Threads split only the rows/columns of C, and every C
/// element accumulates over k in the same fixed order, so the result is bitwise independent of the thread count.
/// </summary>
public static unsafe class Gemm
{
    internal const int KC = 256, MC = 96 * 2, NC = 4096;

    /// <summary>
    /// C[m, n] = beta·C + alpha·op(A)·op(B), where op(A) is [m, k] (A stored [m, lda] or, when
    /// <paramref name="transA"/>, [k, lda]) and op(B) is [k, n] (B stored [k, ldb] or, when
    /// <paramref name="transB"/>, [n, ldb]). <paramref name="threads"/>: 0 = all cores.
    /// </summary>
    public static void Multiply(bool transA, bool transB, int m, int n, int k, float alpha,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc, int threads = 0)
    {
        CheckOperand("A", transA, m, k, a.Length, lda);
        CheckOperand("B", transB, k, n, b.Length, ldb);
        CheckOperand("C", false, m, n, c.Length, ldc);
        fixed (float* pa = a, pb = b, pc = c)
            Run(new GemmOperand(pa, lda, transA, false), new GemmOperand(pb, ldb, transB, false), m, n, k, alpha, beta, pc, ldc, threads);
    }

    /// <summary>Checks that a [rows, cols] matrix (stored transposed when <paramref name="trans"/>) fits its span.</summary>
    internal static void CheckOperand(string name, bool trans, int rows, int cols, int length, int ld)
    {
        if (rows < 0 || cols < 0) throw new ArgumentException($"GEMM {name}: negative size {rows}x{cols}");
        int storedRows = trans ? cols : rows, storedCols = trans ? rows : cols;
        if (storedRows == 0 || storedCols == 0) return;
        if (ld < storedCols) throw new ArgumentException($"GEMM {name}: leading dimension {ld} < {storedCols}");
        if ((long)(storedRows - 1) * ld + storedCols > length)
            throw new ArgumentException($"GEMM {name}: span of {length} too short for {storedRows}x{storedCols} with ld {ld}");
    }

    /// <summary>
    /// The blocked driver. <paramref name="structure"/> lets it skip micro-tiles: <see cref="GemmStructure.LowerC"/>
    /// those entirely above the diagonal of C (a SYRK-style update whose upper triangle the caller ignores; tiles
    /// crossing the diagonal are computed whole), <see cref="GemmStructure.LowerA"/> / <see cref="GemmStructure.LowerB"/>
    /// those whose k-block of op(A) / op(B) lies in that operand's zero upper triangle (skipping exact zero terms, so
    /// the result is the same as without the flag).
    /// </summary>
    internal static void Run(GemmOperand A, GemmOperand B, int m, int n, int k, float alpha, float beta,
        float* C, int ldc, int threads, GemmStructure structure = GemmStructure.General)
    {
        if (m == 0 || n == 0) return;
        if (beta != 1f)
            for (int i = 0; i < m; i++)
            {
                var row = new Span<float>(C + (long)i * ldc, n);
                if (beta == 0f) row.Clear();
                else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
            }
        if (k == 0 || alpha == 0f) return;

        threads = Threads.Resolve(threads);
        bool lowerA = (structure & GemmStructure.LowerA) != 0, lowerB = (structure & GemmStructure.LowerB) != 0, lowerC = (structure & GemmStructure.LowerC) != 0;
        int MR = GemmKernel.MR, NR = GemmKernel.NR;
        int ncMax = Math.Min(NC, n), kcMax = Math.Min(KC, k);
        int panelsMax = (ncMax + NR - 1) / NR;
        float* bufB = (float*)NativeMemory.AlignedAlloc((nuint)(panelsMax * NR * kcMax * sizeof(float)), 64);
        try
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                int panels = (nc + NR - 1) / NR;
                for (int pc = 0; pc < k; pc += KC)
                {
                    int kc = Math.Min(KC, k - pc);
                    // Pack B in parallel chunks of panels.
                    int packChunks = Math.Min(panels, threads);
                    var Bc = B; nint pB = (nint)bufB; int jc_ = jc, pc_ = pc;
                    Threads.For(packChunks, threads, t =>
                    {
                        int first = panels * t / packChunks, last = panels * (t + 1) / packChunks;
                        GemmPacking.PackB(Bc, pc_, kc, jc_, nc, NR, first, last - first, (float*)pB);
                    });

                    // Work units: (row block of MC) x (chunk of panels), enough of them to keep every thread busy.
                    // Row blocks of at most MC rows, as many as a multiple of the threads and of equal size (up to
                    // MR), so no thread is left with one extra block (2048 rows on 2 threads: 12 x 174, not 11 x 192).
                    int mBlocks = (m + MC - 1) / MC;
                    if (threads > 1) mBlocks = (mBlocks + threads - 1) / threads * threads;
                    int mcBlock = Math.Min(MC, ((m + mBlocks - 1) / mBlocks + MR - 1) / MR * MR);
                    mBlocks = (m + mcBlock - 1) / mcBlock;
                    int nChunks = mBlocks >= 2 * threads ? 1 : Math.Min(panels, (2 * threads + mBlocks - 1) / mBlocks);
                    var Ac = A; nint pC = (nint)C;
                    Threads.For(mBlocks * nChunks, threads, u =>
                    {
                        int ib = u / nChunks, ch = u % nChunks;
                        int i0 = ib * mcBlock, mc = Math.Min(mcBlock, m - i0);
                        int q0 = panels * ch / nChunks, q1 = panels * (ch + 1) / nChunks;
                        if (lowerC && jc_ + q0 * NR > i0 + mc - 1) return;
                        if (lowerA && pc_ > i0 + mc - 1) return;
                        if (lowerB)
                        {
                            int lastCol = pc_ + kc - 1 - jc_; // panels starting beyond it are zero in this k-block
                            q1 = lastCol < 0 ? q0 : Math.Min(q1, lastCol / NR + 1);
                            if (q1 <= q0) return;
                        }
                        float* bufA = ThreadBufferA();
                        GemmPacking.PackA(Ac, i0, mc, pc_, kc, MR, bufA);
                        for (int q = q0; q < q1; q++)
                        {
                            int j = jc_ + q * NR, nr = Math.Min(NR, jc_ + nc - j);
                            float* bp = (float*)pB + (long)q * NR * kc;
                            for (int ir = 0; ir < mc; ir += MR)
                            {
                                int i = i0 + ir, mr = Math.Min(MR, mc - ir);
                                if ((lowerC && j > i + mr - 1) || (lowerA && pc_ > i + mr - 1)) continue;
                                GemmKernel.Run(kc, bufA + ir * kc, bp, (float*)pC + (long)i * ldc + j, ldc, alpha, mr, nr);
                            }
                        }
                    });
                }
            }
        }
        finally { NativeMemory.AlignedFree(bufB); }
    }

    [ThreadStatic] private static nint t_bufA;

    // One packed-A block per thread, allocated once for the thread's lifetime (MC x KC floats, 64-byte aligned).
    private static float* ThreadBufferA()
    {
        if (t_bufA == 0) t_bufA = (nint)NativeMemory.AlignedAlloc((nuint)((MC + 16) * KC * sizeof(float)), 64);
        return (float*)t_bufA;
    }
}

/// <summary>Triangular structure a GEMM may exploit (see <see cref="Gemm.Run"/>).</summary>
[Flags]
internal enum GemmStructure
{
    General = 0,
    /// <summary>Only the lower triangle of C is wanted.</summary>
    LowerC = 1,
    /// <summary>op(A) is lower triangular (zero above its diagonal).</summary>
    LowerA = 2,
    /// <summary>op(B) is lower triangular (zero above its diagonal).</summary>
    LowerB = 4,
}
