using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// Dense baselines y = W x, W [rows, cols] row-major in f32 or bf16: four rows at a time (four independent
/// FMA chains and four memory streams), Vector512/256 FMA with a scalar tail, multi-threaded over row blocks.
/// bf16 is widened in registers (a zero-extend and a shift per lane), so it streams half the bytes of f32.
/// One call at a time per instance.
/// </summary>
public sealed unsafe class DenseMatVec : IRowBlockBody
{
    private readonly RowParallel _parallel;
    private float* _wf; private ushort* _wb; private float* _x; private float* _y;
    private int _cols;

    public DenseMatVec(RowParallel parallel) => _parallel = parallel;

    /// <summary>y [rows] = W x, W: [rows, cols] f32, x: [cols].</summary>
    public void Multiply(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        Check(w.Length, rows, cols, x.Length, y.Length);
        fixed (float* wp = w) fixed (float* xp = x) fixed (float* yp = y)
            Run(wp, null, rows, cols, xp, yp);
    }

    /// <summary>y [rows] = W x, W: [rows, cols] bf16 (raw ushort bits), x: [cols].</summary>
    public void Multiply(ReadOnlySpan<ushort> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        Check(w.Length, rows, cols, x.Length, y.Length);
        fixed (ushort* wp = w) fixed (float* xp = x) fixed (float* yp = y)
            Run(null, wp, rows, cols, xp, yp);
    }

    private static void Check(int wLength, int rows, int cols, int xLength, int yLength)
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols != wLength)
            throw new ArgumentException($"W has {wLength} values, expected rows * cols = {(long)rows * cols}");
        if (xLength != cols) throw new ArgumentException($"x has {xLength} values, expected cols = {cols}");
        if (yLength != rows) throw new ArgumentException($"y has {yLength} values, expected rows = {rows}");
    }

    private void Run(float* wf, ushort* wb, int rows, int cols, float* x, float* y)
    {
        _wf = wf; _wb = wb; _x = x; _y = y; _cols = cols;
        try { _parallel.For(rows, Math.Max(4, rows / (16 * _parallel.Threads)) & ~3, this); }
        finally { _wf = null; _wb = null; _x = null; _y = null; }
    }

    void IRowBlockBody.Run(int start, int end)
    {
        int r = start;
        for (; r + 4 <= end; r += 4)
        {
            if (_wf != null) Rows4(_wf + (long)r * _cols, _cols, _x, _y + r);
            else Rows4(_wb + (long)r * _cols, _cols, _x, _y + r);
        }
        for (; r < end; r++)
            _y[r] = _wf != null ? Dot(_wf + (long)r * _cols, _x, _cols) : Dot(_wb + (long)r * _cols, _x, _cols);
    }

    // ---- f32 ----

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4(float* w, int cols, float* x, float* y)
    {
        float* w0 = w, w1 = w + cols, w2 = w + 2 * cols, w3 = w + 3 * cols;
        int j = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 16 <= cols; j += 16)
            {
                var xv = Vector512.Load(x + j);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w0 + j), xv, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w1 + j), xv, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w2 + j), xv, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w3 + j), xv, a3);
            }
            s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 8 <= cols; j += 8)
            {
                var xv = Vector256.Load(x + j);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + j), xv, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + j), xv, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + j), xv, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + j), xv, a3);
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        for (; j < cols; j++)
        {
            s0 += w0[j] * x[j]; s1 += w1[j] * x[j]; s2 += w2[j] * x[j]; s3 += w3[j] * x[j];
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* w, float* x, int cols)
    {
        int j = 0;
        float s = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256<float>.Zero;
            for (; j + 8 <= cols; j += 8) a = Vector256.FusedMultiplyAdd(Vector256.Load(w + j), Vector256.Load(x + j), a);
            s = Vector256.Sum(a);
        }
        for (; j < cols; j++) s += w[j] * x[j];
        return s;
    }

    // ---- bf16: a bf16 is the upper half of an f32, so widening is zero-extend + shift left 16 ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>) Widen512(ushort* p)
    {
        var (lo, hi) = Vector512.Widen(Vector512.Load(p));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>) Widen256(ushort* p)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Load(p));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Rows4(ushort* w, int cols, float* x, float* y)
    {
        ushort* w0 = w, w1 = w + cols, w2 = w + 2 * cols, w3 = w + 3 * cols;
        int j = 0;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 32 <= cols; j += 32)
            {
                var xl = Vector512.Load(x + j); var xh = Vector512.Load(x + j + 16);
                var (l0, h0) = Widen512(w0 + j); a0 = Vector512.FusedMultiplyAdd(h0, xh, Vector512.FusedMultiplyAdd(l0, xl, a0));
                var (l1, h1) = Widen512(w1 + j); a1 = Vector512.FusedMultiplyAdd(h1, xh, Vector512.FusedMultiplyAdd(l1, xl, a1));
                var (l2, h2) = Widen512(w2 + j); a2 = Vector512.FusedMultiplyAdd(h2, xh, Vector512.FusedMultiplyAdd(l2, xl, a2));
                var (l3, h3) = Widen512(w3 + j); a3 = Vector512.FusedMultiplyAdd(h3, xh, Vector512.FusedMultiplyAdd(l3, xl, a3));
            }
            s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 16 <= cols; j += 16)
            {
                var xl = Vector256.Load(x + j); var xh = Vector256.Load(x + j + 8);
                var (l0, h0) = Widen256(w0 + j); a0 = Vector256.FusedMultiplyAdd(h0, xh, Vector256.FusedMultiplyAdd(l0, xl, a0));
                var (l1, h1) = Widen256(w1 + j); a1 = Vector256.FusedMultiplyAdd(h1, xh, Vector256.FusedMultiplyAdd(l1, xl, a1));
                var (l2, h2) = Widen256(w2 + j); a2 = Vector256.FusedMultiplyAdd(h2, xh, Vector256.FusedMultiplyAdd(l2, xl, a2));
                var (l3, h3) = Widen256(w3 + j); a3 = Vector256.FusedMultiplyAdd(h3, xh, Vector256.FusedMultiplyAdd(l3, xl, a3));
            }
            s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
        }
        for (; j < cols; j++)
        {
            s0 += BFloat16.ToFloat(w0[j]) * x[j]; s1 += BFloat16.ToFloat(w1[j]) * x[j];
            s2 += BFloat16.ToFloat(w2[j]) * x[j]; s3 += BFloat16.ToFloat(w3[j]) * x[j];
        }
        y[0] = s0; y[1] = s1; y[2] = s2; y[3] = s3;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot(ushort* w, float* x, int cols)
    {
        int j = 0;
        float s = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var a = Vector256<float>.Zero;
            for (; j + 16 <= cols; j += 16)
            {
                var (l, h) = Widen256(w + j);
                a = Vector256.FusedMultiplyAdd(h, Vector256.Load(x + j + 8), Vector256.FusedMultiplyAdd(l, Vector256.Load(x + j), a));
            }
            s = Vector256.Sum(a);
        }
        for (; j < cols; j++) s += BFloat16.ToFloat(w[j]) * x[j];
        return s;
    }
}
