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
    /// <summary>Rows of X that share one pass over W on the dot-product path (8 with AVX-512's 32 registers:
    /// a decode chunk or a few tokens of an expert read W once; 4 with AVX2's 16).</summary>
    internal static readonly int DotRows = Vector512.IsHardwareAccelerated ? 8 : 4;
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
                    Dot((float*)px + (long)i0 * k, (byte*)pw + (long)j * k * (bf16 ? 2 : 4), bf16, k, rows, (float*)py + (long)i0 * n + j, n);
                }
        });
    }

    /// <summary>A row count known to the JIT: each instantiation of the kernels drops the code of absent rows.</summary>
    private interface IRows { static abstract int Count { get; } }
    private struct R1 : IRows { public static int Count => 1; }
    private struct R2 : IRows { public static int Count => 2; }
    private struct R3 : IRows { public static int Count => 3; }
    private struct R4 : IRows { public static int Count => 4; }
    private struct R5 : IRows { public static int Count => 5; }
    private struct R6 : IRows { public static int Count => 6; }
    private struct R7 : IRows { public static int Count => 7; }
    private struct R8 : IRows { public static int Count => 8; }

    // y[r * ldy] = x[r, :] · w for r < rows (1..8), W row (f32 or bf16) read once.
    private static void Dot(float* x, byte* w, bool bf16, int k, int rows, float* y, int ldy)
    {
        switch (rows)
        {
            case 1: Dot<R1>(x, w, bf16, k, y, ldy); break;
            case 2: Dot<R2>(x, w, bf16, k, y, ldy); break;
            case 3: Dot<R3>(x, w, bf16, k, y, ldy); break;
            case 4: Dot<R4>(x, w, bf16, k, y, ldy); break;
            case 5: Dot<R5>(x, w, bf16, k, y, ldy); break;
            case 6: Dot<R6>(x, w, bf16, k, y, ldy); break;
            case 7: Dot<R7>(x, w, bf16, k, y, ldy); break;
            default: Dot<R8>(x, w, bf16, k, y, ldy); break;
        }
    }

    private static void Dot<TRows>(float* x, byte* w, bool bf16, int k, float* y, int ldy) where TRows : struct, IRows
    {
        if (bf16) DotBf16<TRows>(x, (ushort*)w, k, y, ldy);
        else DotF32<TRows>(x, (float*)w, k, y, ldy);
    }

    // Each row has its own accumulators, summed in the same order whatever the other rows: a row's result does not
    // depend on the row count or on m.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotF32<TRows>(float* x, float* w, int k, float* y, int ldy) where TRows : struct, IRows
    {
        int rows = TRows.Count, p = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        if (Vector512.IsHardwareAccelerated && k >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; p + 16 <= k; p += 16)
            {
                var wv = Vector512.Load(w + p);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), wv, a0);
                if (rows > 1) a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + k + p), wv, a1);
                if (rows > 2) a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * k + p), wv, a2);
                if (rows > 3) a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * k + p), wv, a3);
                if (rows > 4) a4 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 4 * k + p), wv, a4);
                if (rows > 5) a5 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 5 * k + p), wv, a5);
                if (rows > 6) a6 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 6 * k + p), wv, a6);
                if (rows > 7) a7 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 7 * k + p), wv, a7);
            }
            s0 = Vector512.Sum(a0); if (rows > 1) s1 = Vector512.Sum(a1); if (rows > 2) s2 = Vector512.Sum(a2); if (rows > 3) s3 = Vector512.Sum(a3); if (rows > 4) s4 = Vector512.Sum(a4); if (rows > 5) s5 = Vector512.Sum(a5); if (rows > 6) s6 = Vector512.Sum(a6); if (rows > 7) s7 = Vector512.Sum(a7);
        }
        else if (Vector256.IsHardwareAccelerated && k >= 8)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            for (; p + 8 <= k; p += 8)
            {
                var wv = Vector256.Load(w + p);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + p), wv, a0);
                if (rows > 1) a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + k + p), wv, a1);
                if (rows > 2) a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 2 * k + p), wv, a2);
                if (rows > 3) a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 3 * k + p), wv, a3);
                if (rows > 4) a4 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 4 * k + p), wv, a4);
                if (rows > 5) a5 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 5 * k + p), wv, a5);
                if (rows > 6) a6 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 6 * k + p), wv, a6);
                if (rows > 7) a7 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 7 * k + p), wv, a7);
            }
            s0 = Vector256.Sum(a0); if (rows > 1) s1 = Vector256.Sum(a1); if (rows > 2) s2 = Vector256.Sum(a2); if (rows > 3) s3 = Vector256.Sum(a3); if (rows > 4) s4 = Vector256.Sum(a4); if (rows > 5) s5 = Vector256.Sum(a5); if (rows > 6) s6 = Vector256.Sum(a6); if (rows > 7) s7 = Vector256.Sum(a7);
        }
        for (; p < k; p++)
        {
            float wp = w[p];
            s0 = MathF.FusedMultiplyAdd(x[p], wp, s0);
            if (rows > 1) s1 = MathF.FusedMultiplyAdd(x[k + p], wp, s1);
            if (rows > 2) s2 = MathF.FusedMultiplyAdd(x[2 * k + p], wp, s2);
            if (rows > 3) s3 = MathF.FusedMultiplyAdd(x[3 * k + p], wp, s3);
            if (rows > 4) s4 = MathF.FusedMultiplyAdd(x[4 * k + p], wp, s4);
            if (rows > 5) s5 = MathF.FusedMultiplyAdd(x[5 * k + p], wp, s5);
            if (rows > 6) s6 = MathF.FusedMultiplyAdd(x[6 * k + p], wp, s6);
            if (rows > 7) s7 = MathF.FusedMultiplyAdd(x[7 * k + p], wp, s7);
        }
        Store(y, ldy, rows, s0, s1, s2, s3, s4, s5, s6, s7);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotBf16<TRows>(float* x, ushort* w, int k, float* y, int ldy) where TRows : struct, IRows
    {
        int rows = TRows.Count, p = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        if (Vector512.IsHardwareAccelerated && k >= 32)
        {
            // Two accumulator sets (low and high 16 of each 32 bf16 weights) to hide FMA latency.
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            for (; p + 32 <= k; p += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.Load(w + p));
                var wl = Vector512.ShiftLeft(lo, 16).AsSingle();
                var wh = Vector512.ShiftLeft(hi, 16).AsSingle();
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p), wl, a0); b0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + p + 16), wh, b0);
                if (rows > 1) { a1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + k + p), wl, a1); b1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + k + p + 16), wh, b1); }
                if (rows > 2) { a2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * k + p), wl, a2); b2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * k + p + 16), wh, b2); }
                if (rows > 3) { a3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * k + p), wl, a3); b3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * k + p + 16), wh, b3); }
                if (rows > 4) { a4 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 4 * k + p), wl, a4); b4 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 4 * k + p + 16), wh, b4); }
                if (rows > 5) { a5 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 5 * k + p), wl, a5); b5 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 5 * k + p + 16), wh, b5); }
                if (rows > 6) { a6 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 6 * k + p), wl, a6); b6 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 6 * k + p + 16), wh, b6); }
                if (rows > 7) { a7 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 7 * k + p), wl, a7); b7 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 7 * k + p + 16), wh, b7); }
            }
            s0 = Vector512.Sum(a0 + b0); if (rows > 1) s1 = Vector512.Sum(a1 + b1); if (rows > 2) s2 = Vector512.Sum(a2 + b2); if (rows > 3) s3 = Vector512.Sum(a3 + b3); if (rows > 4) s4 = Vector512.Sum(a4 + b4); if (rows > 5) s5 = Vector512.Sum(a5 + b5); if (rows > 6) s6 = Vector512.Sum(a6 + b6); if (rows > 7) s7 = Vector512.Sum(a7 + b7);
        }
        else if (Vector256.IsHardwareAccelerated && k >= 16)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
            for (; p + 16 <= k; p += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(w + p));
                var wl = Vector256.ShiftLeft(lo, 16).AsSingle();
                var wh = Vector256.ShiftLeft(hi, 16).AsSingle();
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + p), wl, a0); b0 = Vector256.FusedMultiplyAdd(Vector256.Load(x + p + 8), wh, b0);
                if (rows > 1) { a1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + k + p), wl, a1); b1 = Vector256.FusedMultiplyAdd(Vector256.Load(x + k + p + 8), wh, b1); }
                if (rows > 2) { a2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 2 * k + p), wl, a2); b2 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 2 * k + p + 8), wh, b2); }
                if (rows > 3) { a3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 3 * k + p), wl, a3); b3 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 3 * k + p + 8), wh, b3); }
                if (rows > 4) { a4 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 4 * k + p), wl, a4); b4 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 4 * k + p + 8), wh, b4); }
                if (rows > 5) { a5 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 5 * k + p), wl, a5); b5 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 5 * k + p + 8), wh, b5); }
                if (rows > 6) { a6 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 6 * k + p), wl, a6); b6 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 6 * k + p + 8), wh, b6); }
                if (rows > 7) { a7 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 7 * k + p), wl, a7); b7 = Vector256.FusedMultiplyAdd(Vector256.Load(x + 7 * k + p + 8), wh, b7); }
            }
            s0 = Vector256.Sum(a0 + b0); if (rows > 1) s1 = Vector256.Sum(a1 + b1); if (rows > 2) s2 = Vector256.Sum(a2 + b2); if (rows > 3) s3 = Vector256.Sum(a3 + b3); if (rows > 4) s4 = Vector256.Sum(a4 + b4); if (rows > 5) s5 = Vector256.Sum(a5 + b5); if (rows > 6) s6 = Vector256.Sum(a6 + b6); if (rows > 7) s7 = Vector256.Sum(a7 + b7);
        }
        for (; p < k; p++)
        {
            float wp = IO.BFloat16.ToFloat(w[p]);
            s0 = MathF.FusedMultiplyAdd(x[p], wp, s0);
            if (rows > 1) s1 = MathF.FusedMultiplyAdd(x[k + p], wp, s1);
            if (rows > 2) s2 = MathF.FusedMultiplyAdd(x[2 * k + p], wp, s2);
            if (rows > 3) s3 = MathF.FusedMultiplyAdd(x[3 * k + p], wp, s3);
            if (rows > 4) s4 = MathF.FusedMultiplyAdd(x[4 * k + p], wp, s4);
            if (rows > 5) s5 = MathF.FusedMultiplyAdd(x[5 * k + p], wp, s5);
            if (rows > 6) s6 = MathF.FusedMultiplyAdd(x[6 * k + p], wp, s6);
            if (rows > 7) s7 = MathF.FusedMultiplyAdd(x[7 * k + p], wp, s7);
        }
        Store(y, ldy, rows, s0, s1, s2, s3, s4, s5, s6, s7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* y, int ldy, int rows, float s0, float s1, float s2, float s3, float s4, float s5, float s6, float s7)
    {
        y[0] = s0;
        if (rows > 1) y[ldy] = s1;
        if (rows > 2) y[2 * ldy] = s2;
        if (rows > 3) y[3 * ldy] = s3;
        if (rows > 4) y[4 * ldy] = s4;
        if (rows > 5) y[5 * ldy] = s5;
        if (rows > 6) y[6 * ldy] = s6;
        if (rows > 7) y[7 * ldy] = s7;
    }
}
