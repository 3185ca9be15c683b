using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qmoe.IO;
using Qmoe.Numerics;

namespace Qmoe.Kernels;

/// <summary>
/// Dense baselines y = W x, W [rows, cols] row-major in f32 or bf16: FMA over 512-, 256- or 128-bit vectors (as
/// <see cref="KernelIsa"/> says, so a narrowed comparison narrows both sides) with a scalar tail, multi-threaded
/// over row blocks. bf16 is widened in registers (a zero-extend and a shift per lane), so it streams half the bytes
/// of f32. Reentrant (operands travel in a stack struct).
/// </summary>
public sealed unsafe class DenseMatVec
{
    private readonly RowParallel _parallel;

    /// <summary>The instruction-set path this instance runs.</summary>
    public KernelIsa Isa { get; }

    public DenseMatVec(RowParallel parallel, KernelIsa? isa = null)
    {
        _parallel = parallel;
        Isa = KernelIsas.OrBest(isa);
    }

    /// <summary>y [rows] = W x, W: [rows, cols] f32, x: [cols].</summary>
    public void Multiply(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        Check(w.Length, rows, cols, x.Length, y.Length);
        fixed (float* wp = w) fixed (float* xp = x) fixed (float* yp = y)
            Run(new Job { F32 = wp, X = xp, Y = yp, Cols = cols, Isa = Isa }, rows);
    }

    /// <summary>y [rows] = W x, W: [rows, cols] bf16 (raw ushort bits), x: [cols].</summary>
    public void Multiply(ReadOnlySpan<ushort> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        Check(w.Length, rows, cols, x.Length, y.Length);
        fixed (ushort* wp = w) fixed (float* xp = x) fixed (float* yp = y)
            Run(new Job { Bf16 = wp, X = xp, Y = yp, Cols = cols, Isa = Isa }, rows);
    }

    private static void Check(int wLength, int rows, int cols, int xLength, int yLength)
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols != wLength)
            throw new ArgumentException($"W has {wLength} values, expected rows * cols = {(long)rows * cols}");
        if (xLength != cols) throw new ArgumentException($"x has {xLength} values, expected cols = {cols}");
        if (yLength != rows) throw new ArgumentException($"y has {yLength} values, expected rows = {rows}");
    }

    private void Run(Job job, int rows) => _parallel.For(rows, _parallel.BlockRows(rows, job.Cols), ref job);

    private struct Job : IRowBlockBody
    {
        public float* F32; public ushort* Bf16; public float* X; public float* Y;
        public int Cols;
        public KernelIsa Isa;

        public readonly void Run(int start, int end)
        {
            for (int r = start; r < end; r++)
                Y[r] = F32 != null ? Dot(F32 + (long)r * Cols, X, Cols, Isa) : Dot(Bf16 + (long)r * Cols, X, Cols, Isa);
        }
    }

    // One row at a time, so a block of rows is one sequential stream (what DRAM prefetchers follow best; four
    // interleaved row streams measured at half the bandwidth for bf16), with four accumulators to hide FMA latency.

    /// <summary>
    /// Software prefetch distance for DRAM-resident W: on the bench's sweep, 1–2 KB ahead measured up to ~1.7x
    /// the single-core bandwidth of hardware prefetch alone (noisy on the shared machine; 8 KB was no better).
    /// x86 only (.NET has no ARM prefetch intrinsic).
    /// </summary>
    private const int PrefetchBytes = 1024;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(void* p)
    {
        if (Sse.IsSupported) Sse.Prefetch0((byte*)p + PrefetchBytes);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* w, float* x, int cols, KernelIsa isa)
    {
        int j = 0;
        float s = 0;
        if (isa == KernelIsa.Avx512)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 64 <= cols; j += 64)
            {
                Prefetch(w + j); Prefetch(w + j + 32);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + j), Vector512.Load(x + j), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Load(w + j + 16), Vector512.Load(x + j + 16), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Load(w + j + 32), Vector512.Load(x + j + 32), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Load(w + j + 48), Vector512.Load(x + j + 48), a3);
            }
            for (; j + 16 <= cols; j += 16) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + j), Vector512.Load(x + j), a0);
            s = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
        }
        else if (isa == KernelIsa.Avx2)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 32 <= cols; j += 32)
            {
                Prefetch(w + j);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + j), Vector256.Load(x + j), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w + j + 8), Vector256.Load(x + j + 8), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w + j + 16), Vector256.Load(x + j + 16), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w + j + 24), Vector256.Load(x + j + 24), a3);
            }
            for (; j + 8 <= cols; j += 8) a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w + j), Vector256.Load(x + j), a0);
            s = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
        }
        else if (isa == KernelIsa.Vector128)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 16 <= cols; j += 16)
            {
                if ((j & 31) == 0) Prefetch(w + j);
                a0 = Vector128.FusedMultiplyAdd(Vector128.Load(w + j), Vector128.Load(x + j), a0);
                a1 = Vector128.FusedMultiplyAdd(Vector128.Load(w + j + 4), Vector128.Load(x + j + 4), a1);
                a2 = Vector128.FusedMultiplyAdd(Vector128.Load(w + j + 8), Vector128.Load(x + j + 8), a2);
                a3 = Vector128.FusedMultiplyAdd(Vector128.Load(w + j + 12), Vector128.Load(x + j + 12), a3);
            }
            for (; j + 4 <= cols; j += 4) a0 = Vector128.FusedMultiplyAdd(Vector128.Load(w + j), Vector128.Load(x + j), a0);
            s = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
        }
        for (; j < cols; j++) s += w[j] * x[j];
        return s;
    }

    // bf16 is the upper half of an f32, so widening is a zero-extend and a shift left by 16.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma512(ushort* w, float* x, Vector512<float> acc)
    {
        var (lo, hi) = Vector512.Widen(Vector512.Load(w));
        acc = Vector512.FusedMultiplyAdd((lo << 16).AsSingle(), Vector512.Load(x), acc);
        return Vector512.FusedMultiplyAdd((hi << 16).AsSingle(), Vector512.Load(x + 16), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma256(ushort* w, float* x, Vector256<float> acc)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Load(w));
        acc = Vector256.FusedMultiplyAdd((lo << 16).AsSingle(), Vector256.Load(x), acc);
        return Vector256.FusedMultiplyAdd((hi << 16).AsSingle(), Vector256.Load(x + 8), acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fma128(ushort* w, float* x, Vector128<float> acc)
    {
        var (lo, hi) = Vector128.Widen(Vector128.Load(w));
        acc = Vector128.FusedMultiplyAdd((lo << 16).AsSingle(), Vector128.Load(x), acc);
        return Vector128.FusedMultiplyAdd((hi << 16).AsSingle(), Vector128.Load(x + 4), acc);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot(ushort* w, float* x, int cols, KernelIsa isa)
    {
        int j = 0;
        float s = 0;
        if (isa == KernelIsa.Avx512)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 128 <= cols; j += 128)
            {
                Prefetch(w + j); Prefetch(w + j + 64);
                a0 = Fma512(w + j, x + j, a0);
                a1 = Fma512(w + j + 32, x + j + 32, a1);
                a2 = Fma512(w + j + 64, x + j + 64, a2);
                a3 = Fma512(w + j + 96, x + j + 96, a3);
            }
            for (; j + 32 <= cols; j += 32) a0 = Fma512(w + j, x + j, a0);
            s = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
        }
        else if (isa == KernelIsa.Avx2)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 64 <= cols; j += 64)
            {
                Prefetch(w + j);
                a0 = Fma256(w + j, x + j, a0);
                a1 = Fma256(w + j + 16, x + j + 16, a1);
                a2 = Fma256(w + j + 32, x + j + 32, a2);
                a3 = Fma256(w + j + 48, x + j + 48, a3);
            }
            for (; j + 16 <= cols; j += 16) a0 = Fma256(w + j, x + j, a0);
            s = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
        }
        else if (isa == KernelIsa.Vector128)
        {
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; j + 32 <= cols; j += 32)
            {
                if ((j & 63) == 0) Prefetch(w + j);
                a0 = Fma128(w + j, x + j, a0);
                a1 = Fma128(w + j + 8, x + j + 8, a1);
                a2 = Fma128(w + j + 16, x + j + 16, a2);
                a3 = Fma128(w + j + 24, x + j + 24, a3);
            }
            for (; j + 8 <= cols; j += 8) a0 = Fma128(w + j, x + j, a0);
            s = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
        }
        for (; j < cols; j++) s += BFloat16.ToFloat(w[j]) * x[j];
        return s;
    }
}
