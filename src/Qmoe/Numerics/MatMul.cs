using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qmoe.Numerics;

/// <summary>
/// The linear-layer product Y[m, n] = X[m, k] · W[n, k]ᵀ with W in f32 or bf16 (e.g. a memory-mapped checkpoint;
/// bf16 is widened on the fly, never copied to an f32 W). Few rows of X (generation) take a bandwidth-bound
/// dot-product path that streams W once per <see cref="DotRows"/> rows of X; more rows take the packed GEMM.
/// Both split only the rows of W across threads, so Y is bitwise independent of the thread count.
/// </summary>
public static unsafe class MatMul
{
    /// <summary>Rows of X that share one pass over W on the dot-product path.</summary>
    internal const int DotRows = 4;
    /// <summary>Up to this many rows of X use the dot-product path; more use the GEMM.</summary>
    internal const int DotPathMaxRows = 8;
    // Rows of W per work unit on the dot-product path (64 rows x 4 KB: large enough to amortise scheduling).
    private const int RowsPerUnit = 64;
    // Least multiply-adds per work unit (tens of microseconds): below it a product runs on the calling thread, since
    // waking another thread costs more than it saves (a decode step of a small model makes hundreds of such products).
    private const long MinUnitMacs = 1 << 18;

    /// <summary>Y[m, n] = X[m, k] · W[n, k]ᵀ, all row-major f32. <paramref name="threads"/>: 0 = all cores.</summary>
    public static void XWt(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int m, int n, int k, int threads = 0)
    {
        Check(x.Length, w.Length, y.Length, m, n, k);
        fixed (float* px = x, py = y) fixed (float* pw = w) Run(px, pw, false, py, m, n, k, threads);
    }

    /// <summary>Y[m, n] = X[m, k] · W[n, k]ᵀ with W as bf16 bit patterns. <paramref name="threads"/>: 0 = all cores.</summary>
    public static void XWt(ReadOnlySpan<float> x, ReadOnlySpan<ushort> w, Span<float> y, int m, int n, int k, int threads = 0)
    {
        Check(x.Length, w.Length, y.Length, m, n, k);
        fixed (float* px = x, py = y) fixed (ushort* pw = w) Run(px, pw, true, py, m, n, k, threads);
    }

    private static void Check(int xLen, int wLen, int yLen, int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0) throw new ArgumentException($"XWt: negative size m={m} n={n} k={k}");
        if ((long)m * k > xLen) throw new ArgumentException($"XWt: X has {xLen} elements, needs {m}x{k}");
        if ((long)n * k > wLen) throw new ArgumentException($"XWt: W has {wLen} elements, needs {n}x{k}");
        if ((long)m * n > yLen) throw new ArgumentException($"XWt: Y has {yLen} elements, needs {m}x{n}");
    }

    private static void Run(float* x, void* w, bool bf16, float* y, int m, int n, int k, int threads)
    {
        if (m == 0 || n == 0) return;
        long macs = (long)m * n * k;
        if (macs < MinUnitMacs) threads = 1;
        if (m > DotPathMaxRows)
        {
            Gemm.Run(new GemmOperand(x, k, false, false), new GemmOperand(w, k, true, bf16), m, n, k, 1f, 0f, y, n, threads);
            return;
        }
        nint px = (nint)x, pw = (nint)w, py = (nint)y;
        // Work units of whole rows of W, each of at least MinUnitMacs: which thread computes a row never changes its value.
        int unitRows = (int)Math.Clamp(MinUnitMacs / Math.Max(1L, (long)m * k), RowsPerUnit, Math.Max(RowsPerUnit, n));
        int units = (n + unitRows - 1) / unitRows;
        Threads.For(units, threads, u =>
        {
            int j1 = Math.Min(n, (u + 1) * unitRows);
            for (int j = u * unitRows; j < j1; j++)
                for (int i0 = 0; i0 < m; i0 += DotRows)
                {
                    int rows = Math.Min(DotRows, m - i0);
                    if (bf16) DotBf16((float*)px + (long)i0 * k, (ushort*)pw + (long)j * k, k, rows, (float*)py + (long)i0 * n + j, n);
                    else DotF32((float*)px + (long)i0 * k, (float*)pw + (long)j * k, k, rows, (float*)py + (long)i0 * n + j, n);
                }
        });
    }

    // y[r * ldy] = x[r, :] · w for r < rows (rows <= DotRows), W row read once.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotF32(float* x, float* w, int k, int rows, float* y, int ldy)
    {
        int p = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated && k >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p + 16 <= k; p += 16)
            {
                var wv = Vector512.Load(w + p);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), wv, a0);
                if (rows > 1) a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + k + p), wv, a1);
                if (rows > 2) a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * k + p), wv, a2);
                if (rows > 3) a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * k + p), wv, a3);
            }
            s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
        }
        else if (Vector256.IsHardwareAccelerated && k >= 8)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; p + 8 <= k; p += 8)
            {
                var wv = Vector256.Load(w + p);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + p), wv, a0);
                if (rows > 1) a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + k + p), wv, a1);
                if (rows > 2) a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 2 * k + p), wv, a2);
                if (rows > 3) a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 3 * k + p), wv, a3);
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        for (; p < k; p++)
        {
            float wp = w[p];
            s0 = MathF.FusedMultiplyAdd(x[p], wp, s0);
            if (rows > 1) s1 = MathF.FusedMultiplyAdd(x[k + p], wp, s1);
            if (rows > 2) s2 = MathF.FusedMultiplyAdd(x[2 * k + p], wp, s2);
            if (rows > 3) s3 = MathF.FusedMultiplyAdd(x[3 * k + p], wp, s3);
        }
        Store(y, ldy, rows, s0, s1, s2, s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotBf16(float* x, ushort* w, int k, int rows, float* y, int ldy)
    {
        int p = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated && k >= 32)
        {
            // Two accumulator sets (low and high 16 of each 32 bf16 weights) to hide FMA latency.
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            for (; p + 32 <= k; p += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(w + p));
                var wl = Vector512.ShiftLeft(lo, 16).AsSingle();
                var wh = Vector512.ShiftLeft(hi, 16).AsSingle();
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), wl, a0);
                b0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p + 16), wh, b0);
                if (rows > 1) { a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + k + p), wl, a1); b1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + k + p + 16), wh, b1); }
                if (rows > 2) { a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * k + p), wl, a2); b2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * k + p + 16), wh, b2); }
                if (rows > 3) { a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * k + p), wl, a3); b3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * k + p + 16), wh, b3); }
            }
            s0 = Vector512.Sum(a0 + b0); s1 = Vector512.Sum(a1 + b1); s2 = Vector512.Sum(a2 + b2); s3 = Vector512.Sum(a3 + b3);
        }
        else if (Vector256.IsHardwareAccelerated && k >= 16)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
            for (; p + 16 <= k; p += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(w + p));
                var wl = Vector256.ShiftLeft(lo, 16).AsSingle();
                var wh = Vector256.ShiftLeft(hi, 16).AsSingle();
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + p), wl, a0);
                b0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + p + 8), wh, b0);
                if (rows > 1) { a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + k + p), wl, a1); b1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + k + p + 8), wh, b1); }
                if (rows > 2) { a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 2 * k + p), wl, a2); b2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 2 * k + p + 8), wh, b2); }
                if (rows > 3) { a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 3 * k + p), wl, a3); b3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 3 * k + p + 8), wh, b3); }
            }
            s0 = Vector256.Sum(a0 + b0); s1 = Vector256.Sum(a1 + b1); s2 = Vector256.Sum(a2 + b2); s3 = Vector256.Sum(a3 + b3);
        }
        for (; p < k; p++)
        {
            float wp = IO.BFloat16.ToFloat(w[p]);
            s0 = MathF.FusedMultiplyAdd(x[p], wp, s0);
            if (rows > 1) s1 = MathF.FusedMultiplyAdd(x[k + p], wp, s1);
            if (rows > 2) s2 = MathF.FusedMultiplyAdd(x[2 * k + p], wp, s2);
            if (rows > 3) s3 = MathF.FusedMultiplyAdd(x[3 * k + p], wp, s3);
        }
        Store(y, ldy, rows, s0, s1, s2, s3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* y, int ldy, int rows, float s0, float s1, float s2, float s3)
    {
        y[0] = s0;
        if (rows > 1) y[ldy] = s1;
        if (rows > 2) y[2 * ldy] = s2;
        if (rows > 3) y[3 * ldy] = s3;
    }
}
