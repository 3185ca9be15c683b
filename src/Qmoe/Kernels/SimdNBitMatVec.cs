using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qmoe.Numerics;

namespace Qmoe.Kernels;

/// <summary>
/// The CPU kernel for bit-packed n-bit matrices. Since W[r, j] = s_r (c_j − z_r), a row's product factors as
/// y = s_r (Σ_j c_j x_j − z_r Σ_j x_j): Σ x is computed once per input vector, and the inner loop only turns codes
/// into floats. 8 codes always start on a byte boundary (byte k · bits of the row), so a window of 8 lanes is one
/// unaligned 32-bit load, a broadcast, a per-lane variable right shift by (0, b, 2b, …, 7b), an AND with 2^b − 1,
/// an int→float conversion and one FMA per input vector (AVX-512: two such loads fill 16 lanes; 2-bit codes, 16 to a
/// word, take one). Windows whose
/// 32-bit load would reach past the matrix's bytes, and the last cols mod 8 codes, take the scalar path.
/// Multi-threaded over row blocks by <see cref="RowParallel"/>; allocation-free and reentrant. The Vector128 path
/// (SSE, NEON: portable <see cref="Vector128"/> operations only, which have no per-lane variable shift) gets the
/// shift from a multiply: code i = (word · 2^(32 − bits − i·bits)) >> (32 − bits), two 4-lane halves per window,
/// multiply and add unfused.
/// </summary>
public sealed unsafe class SimdNBitMatVec : INBitMatVec
{
    private readonly RowParallel _parallel;
    public KernelIsa Isa { get; }

    /// <param name="parallel">the worker threads row blocks run on</param>
    /// <param name="isa">the path (default: the widest this machine runs)</param>
    public SimdNBitMatVec(RowParallel parallel, KernelIsa? isa = null)
    {
        _parallel = parallel;
        Isa = KernelIsas.OrBest(isa);
    }

    /// <summary>Reentrant: each call's operands live in a stack-local <see cref="Job"/>.</summary>
    public void Multiply(in NBitMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        var job = new Job();
        for (int b = 0; b < batch; b++)
        {
            double s = 0;
            foreach (float v in x.Slice(b * w.Cols, w.Cols)) s += v;
            job.SumX[b] = (float)s;
        }
        fixed (byte* packed = w.Packed) fixed (float* scales = w.Scales) fixed (byte* zeros = w.Zeros)
        fixed (float* xp = x) fixed (float* yp = y)
        {
            job.Packed = packed; job.Scales = scales; job.Zeros = zeros; job.X = xp; job.Y = yp;
            job.PackedLength = w.Packed.Length;
            job.Rows = w.Rows; job.Cols = w.Cols; job.Bits = w.Bits; job.Batch = batch; job.RowBytes = (int)w.RowBytes; job.Isa = Isa;
            _parallel.For(w.Rows, _parallel.BlockRows(w.Rows, w.Cols), ref job);
        }
    }

    [System.Runtime.CompilerServices.InlineArray(ICompressedMatVec.MaxBatch)]
    private struct BatchFloats { private float _e; }

    /// <summary>One call's operands (a stack local shared with the workers for the call's duration).</summary>
    private struct Job : IRowBlockBody
    {
        public byte* Packed; public float* Scales; public byte* Zeros; public float* X; public float* Y;
        public long PackedLength;
        public int Rows, Cols, Bits, Batch, RowBytes;
        public KernelIsa Isa;
        public BatchFloats SumX;

        public void Run(int start, int end)
        {
            Span<float> dots = stackalloc float[ICompressedMatVec.MaxBatch];
            int bits = Bits, cols = Cols;
            for (int r = start; r < end; r++)
            {
                long rowOffset = (long)r * RowBytes;
                byte* row = Packed + rowOffset;
                // Windows k with a 4-byte load at k · bits inside the matrix (only the last row's last windows can fail this).
                long avail = PackedLength - rowOffset - 4;
                int windows = avail < 0 ? 0 : (int)Math.Min(cols / 8, avail / bits + 1);
                dots.Clear();
                switch (Isa)
                {
                    case KernelIsa.Avx512: Dots512(row, windows, bits, X, cols, Batch, dots); break;
                    case KernelIsa.Avx2: Dots256(row, 0, windows, bits, X, cols, Batch, dots); break;
                    case KernelIsa.Vector128: Dots128(row, windows, bits, X, cols, Batch, dots); break;
                    default: windows = 0; break;
                }
                int mask = (1 << bits) - 1;
                for (int j = windows * 8; j < cols; j++)
                {
                    int bit = j * bits;
                    int c = ((row[bit >> 3] | ((bit & 7) + bits > 8 ? row[(bit >> 3) + 1] << 8 : 0)) >> (bit & 7)) & mask;
                    for (int b = 0; b < Batch; b++) dots[b] += c * X[b * cols + j];
                }
                float scale = Scales[r], zero = Zeros[r];
                for (int b = 0; b < Batch; b++) Y[b * Rows + r] = scale * (dots[b] - zero * SumX[b]);
            }
        }
    }

    // dots[b] += Σ over windows [0, windows) of codes · x[b]: per window two 4-lane halves, each lane's code moved to
    // the top bits by a multiply (a left shift by 32 − bits − i·bits ≥ 0, since 8 · bits ≤ 32) and brought down by a
    // uniform right shift.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Dots128(byte* row, int windows, int bits, float* x0, int cols, int batch, Span<float> dots)
    {
        int top = 32 - bits;
        var mulLo = Vector128.Create(1u << top, 1u << (top - bits), 1u << (top - 2 * bits), 1u << (top - 3 * bits));
        var mulHi = Vector128.Create(1u << (top - 4 * bits), 1u << (top - 5 * bits), 1u << (top - 6 * bits), 1u << (top - 7 * bits));
        if (batch == 1)
        {
            Vector128<float> a0 = default, a1 = default;
            for (int k = 0; k < windows; k++)
            {
                var v = Vector128.Create(Unsafe.ReadUnaligned<uint>(row + k * bits));
                var lo = Vector128.ConvertToSingle(Vector128.ShiftRightLogical(v * mulLo, top).AsInt32());
                var hi = Vector128.ConvertToSingle(Vector128.ShiftRightLogical(v * mulHi, top).AsInt32());
                a0 += lo * Vector128.Load(x0 + 8 * k);
                a1 += hi * Vector128.Load(x0 + 8 * k + 4);
            }
            dots[0] += HorizontalSum.Sum(a0 + a1);
            return;
        }
        Span<Vector128<float>> acc = stackalloc Vector128<float>[2 * ICompressedMatVec.MaxBatch];
        for (int k = 0; k < windows; k++)
        {
            var v = Vector128.Create(Unsafe.ReadUnaligned<uint>(row + k * bits));
            var lo = Vector128.ConvertToSingle(Vector128.ShiftRightLogical(v * mulLo, top).AsInt32());
            var hi = Vector128.ConvertToSingle(Vector128.ShiftRightLogical(v * mulHi, top).AsInt32());
            for (int b = 0; b < batch; b++)
            {
                float* x = x0 + b * cols + 8 * k;
                acc[2 * b] += lo * Vector128.Load(x);
                acc[2 * b + 1] += hi * Vector128.Load(x + 4);
            }
        }
        for (int b = 0; b < batch; b++) dots[b] += HorizontalSum.Sum(acc[2 * b] + acc[2 * b + 1]);
    }

    private static Vector256<uint> Shifts256(int bits) => Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7) * (uint)bits;

    // dots[b] += Σ over windows [w0, w1) of codes · x[b] (8 lanes per window).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Dots256(byte* row, int w0, int w1, int bits, float* x0, int cols, int batch, Span<float> dots)
    {
        var shifts = Shifts256(bits);
        var mask = Vector256.Create((uint)((1 << bits) - 1));
        if (batch == 1)
        {
            Vector256<float> a0 = default, a1 = default;
            float* x = x0;
            int k = w0;
            for (; k + 2 <= w1; k += 2)
            {
                var v0 = Avx2.ShiftRightLogicalVariable(Vector256.Create(Unsafe.ReadUnaligned<uint>(row + k * bits)), shifts) & mask;
                var v1 = Avx2.ShiftRightLogicalVariable(Vector256.Create(Unsafe.ReadUnaligned<uint>(row + (k + 1) * bits)), shifts) & mask;
                a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v0.AsInt32()), Avx.LoadVector256(x + 8 * k), a0);
                a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v1.AsInt32()), Avx.LoadVector256(x + 8 * k + 8), a1);
            }
            if (k < w1)
            {
                var v = Avx2.ShiftRightLogicalVariable(Vector256.Create(Unsafe.ReadUnaligned<uint>(row + k * bits)), shifts) & mask;
                a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(v.AsInt32()), Avx.LoadVector256(x + 8 * k), a0);
            }
            dots[0] += HorizontalSum.Sum(a0 + a1);
            return;
        }
        Span<Vector256<float>> acc = stackalloc Vector256<float>[ICompressedMatVec.MaxBatch];
        for (int k = w0; k < w1; k++)
        {
            var f = Avx.ConvertToVector256Single((Avx2.ShiftRightLogicalVariable(Vector256.Create(Unsafe.ReadUnaligned<uint>(row + k * bits)), shifts) & mask).AsInt32());
            for (int b = 0; b < batch; b++) acc[b] = Fma.MultiplyAdd(f, Avx.LoadVector256(x0 + b * cols + 8 * k), acc[b]);
        }
        for (int b = 0; b < batch; b++) dots[b] += HorizontalSum.Sum(acc[b]);
    }

    /// <summary>How <see cref="Dots512{TWidth}"/> loads 16 codes: any width as two 8-code windows (two 32-bit loads), or
    /// 2-bit codes, whose 16 fit one 32-bit word, as one broadcast load (lane i shifted by 2i: the same lanes, so the
    /// same sums, with half the loads and no lane insert; measured in <c>bench matvec</c>).</summary>
    private interface IWidth { static abstract bool TwoBit { get; } }
    private struct AnyWidth : IWidth { public static bool TwoBit => false; }
    private struct TwoBits : IWidth { public static bool TwoBit => true; }

    // Codes 16k … 16k + 15 of the row (p = row + 2k · bits) as floats.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Codes16<TWidth>(byte* p, int bits, Vector512<uint> shifts, Vector512<uint> mask) where TWidth : struct, IWidth
    {
        var words = TWidth.TwoBit
            ? Vector512.Create(Unsafe.ReadUnaligned<uint>(p))
            : Vector512.Create(Vector256.Create(Unsafe.ReadUnaligned<uint>(p)), Vector256.Create(Unsafe.ReadUnaligned<uint>(p + bits)));
        return Avx512F.ConvertToVector512Single((Avx512F.ShiftRightLogicalVariable(words, shifts) & mask).AsInt32());
    }

    // 16 lanes per step (two 8-code windows), then the odd window through the 256-bit path.
    private static void Dots512(byte* row, int windows, int bits, float* x0, int cols, int batch, Span<float> dots)
    {
        if (bits == 2) Dots512<TwoBits>(row, windows, bits, x0, cols, batch, dots);
        else Dots512<AnyWidth>(row, windows, bits, x0, cols, batch, dots);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Dots512<TWidth>(byte* row, int windows, int bits, float* x0, int cols, int batch, Span<float> dots) where TWidth : struct, IWidth
    {
        // Lane i holds code i of its word: 16 codes of one word (2-bit), or 8 of each of two windows.
        var lanes = TWidth.TwoBit ? Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) : Vector512.Create(0u, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
        var shifts = lanes * (uint)bits;
        var mask = Vector512.Create((uint)((1 << bits) - 1));
        int pairs = windows / 2;
        if (batch == 1)
        {
            Vector512<float> a0 = default, a1 = default;
            int k = 0;
            for (; k + 2 <= pairs; k += 2)
            {
                byte* p = row + 2 * k * bits;
                a0 = Avx512F.FusedMultiplyAdd(Codes16<TWidth>(p, bits, shifts, mask), Avx512F.LoadVector512(x0 + 16 * k), a0);
                a1 = Avx512F.FusedMultiplyAdd(Codes16<TWidth>(p + 2 * bits, bits, shifts, mask), Avx512F.LoadVector512(x0 + 16 * k + 16), a1);
            }
            if (k < pairs)
                a0 = Avx512F.FusedMultiplyAdd(Codes16<TWidth>(row + 2 * k * bits, bits, shifts, mask), Avx512F.LoadVector512(x0 + 16 * k), a0);
            dots[0] += HorizontalSum.Sum(a0 + a1);
        }
        else
        {
            Span<Vector512<float>> acc = stackalloc Vector512<float>[ICompressedMatVec.MaxBatch];
            for (int k = 0; k < pairs; k++)
            {
                var f = Codes16<TWidth>(row + 2 * k * bits, bits, shifts, mask);
                for (int b = 0; b < batch; b++) acc[b] = Avx512F.FusedMultiplyAdd(f, Avx512F.LoadVector512(x0 + b * cols + 16 * k), acc[b]);
            }
            for (int b = 0; b < batch; b++) dots[b] += HorizontalSum.Sum(acc[b]);
        }
        if (2 * pairs < windows) Dots256(row, 2 * pairs, windows, bits, x0, cols, batch, dots);
    }
}
