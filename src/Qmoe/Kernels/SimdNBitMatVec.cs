using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qmoe.Kernels;

/// <summary>
/// The CPU kernel for bit-packed n-bit matrices. Since W[r, j] = s_r (c_j − z_r), a row's product factors as
/// y = s_r (Σ_j c_j x_j − z_r Σ_j x_j): Σ x is computed once per input vector, and the inner loop only turns codes
/// into floats. 8 codes always start on a byte boundary (byte k · bits of the row), so a window of 8 lanes is one
/// unaligned 32-bit load, a broadcast, a per-lane variable right shift by (0, b, 2b, …, 7b), an AND with 2^b − 1,
/// an int→float conversion and one FMA per input vector (AVX-512: two such loads fill 16 lanes). Windows whose
/// 32-bit load would reach past the matrix's bytes, and the last cols mod 8 codes, take the scalar path.
/// Multi-threaded over row blocks by <see cref="RowParallel"/>; allocation-free per call.
/// </summary>
public sealed unsafe class SimdNBitMatVec : INBitMatVec, IRowBlockBody
{
    private readonly RowParallel _parallel;
    public SimdCompressedMatVec.Path Width { get; }

    // Operands of the call in progress (pinned for its duration).
    private byte* _packed; private float* _scales; private byte* _zeros; private float* _x; private float* _y;
    private long _packedLength;
    private int _rows, _cols, _bits, _batch, _rowBytes;
    private readonly float[] _sumX = new float[ICompressedMatVec.MaxBatch];

    public SimdNBitMatVec(RowParallel parallel, SimdCompressedMatVec.Path? path = null)
    {
        _parallel = parallel;
        if (path is { } p && p < SimdCompressedMatVec.BestPath) throw new ArgumentException($"{p} is not supported on this machine", nameof(path));
        Width = path ?? SimdCompressedMatVec.BestPath;
    }

    public void Multiply(in NBitMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        for (int b = 0; b < batch; b++)
        {
            double s = 0;
            foreach (float v in x.Slice(b * w.Cols, w.Cols)) s += v;
            _sumX[b] = (float)s;
        }
        fixed (byte* packed = w.Packed) fixed (float* scales = w.Scales) fixed (byte* zeros = w.Zeros)
        fixed (float* xp = x) fixed (float* yp = y)
        {
            _packed = packed; _scales = scales; _zeros = zeros; _x = xp; _y = yp;
            _packedLength = w.Packed.Length;
            _rows = w.Rows; _cols = w.Cols; _bits = w.Bits; _batch = batch; _rowBytes = (int)w.RowBytes;
            try { _parallel.For(w.Rows, Math.Max(4, w.Rows / (16 * _parallel.Threads)), this); }
            finally { _packed = null; _scales = null; _zeros = null; _x = null; _y = null; }
        }
    }

    void IRowBlockBody.Run(int start, int end)
    {
        Span<float> dots = stackalloc float[ICompressedMatVec.MaxBatch];
        int bits = _bits, cols = _cols;
        for (int r = start; r < end; r++)
        {
            long rowOffset = (long)r * _rowBytes;
            byte* row = _packed + rowOffset;
            // Windows k with a 4-byte load at k · bits inside the matrix (only the last row's last windows can fail this).
            long avail = _packedLength - rowOffset - 4;
            int windows = avail < 0 ? 0 : (int)Math.Min(cols / 8, avail / bits + 1);
            dots.Clear();
            switch (Width)
            {
                case SimdCompressedMatVec.Path.Avx512: Dots512(row, windows, bits, dots); break;
                case SimdCompressedMatVec.Path.Avx2: Dots256(row, 0, windows, bits, dots); break;
                default: windows = 0; break;
            }
            int mask = (1 << bits) - 1;
            for (int j = windows * 8; j < cols; j++)
            {
                int bit = j * bits;
                int c = ((row[bit >> 3] | ((bit & 7) + bits > 8 ? row[(bit >> 3) + 1] << 8 : 0)) >> (bit & 7)) & mask;
                for (int b = 0; b < _batch; b++) dots[b] += c * _x[b * cols + j];
            }
            float scale = _scales[r], zero = _zeros[r];
            for (int b = 0; b < _batch; b++) _y[b * _rows + r] = scale * (dots[b] - zero * _sumX[b]);
        }
    }

    private static Vector256<uint> Shifts256(int bits) => Vector256.Create(0u, 1, 2, 3, 4, 5, 6, 7) * (uint)bits;

    // dots[b] += Σ over windows [w0, w1) of codes · x[b] (8 lanes per window).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Dots256(byte* row, int w0, int w1, int bits, Span<float> dots)
    {
        var shifts = Shifts256(bits);
        var mask = Vector256.Create((uint)((1 << bits) - 1));
        int cols = _cols;
        if (_batch == 1)
        {
            Vector256<float> a0 = default, a1 = default;
            float* x = _x;
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
            dots[0] += Vector256.Sum(a0 + a1);
            return;
        }
        Span<Vector256<float>> acc = stackalloc Vector256<float>[ICompressedMatVec.MaxBatch];
        for (int k = w0; k < w1; k++)
        {
            var f = Avx.ConvertToVector256Single((Avx2.ShiftRightLogicalVariable(Vector256.Create(Unsafe.ReadUnaligned<uint>(row + k * bits)), shifts) & mask).AsInt32());
            for (int b = 0; b < _batch; b++) acc[b] = Fma.MultiplyAdd(f, Avx.LoadVector256(_x + b * cols + 8 * k), acc[b]);
        }
        for (int b = 0; b < _batch; b++) dots[b] += Vector256.Sum(acc[b]);
    }

    // 16 lanes per step (two 8-code windows), then the odd window through the 256-bit path.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Dots512(byte* row, int windows, int bits, Span<float> dots)
    {
        var s8 = Shifts256(bits);
        var shifts = Vector512.Create(s8, s8);
        var mask = Vector512.Create((uint)((1 << bits) - 1));
        int pairs = windows / 2, cols = _cols;
        if (_batch == 1)
        {
            Vector512<float> a0 = default, a1 = default;
            float* x = _x;
            int k = 0;
            for (; k + 2 <= pairs; k += 2)
            {
                byte* p = row + 2 * k * bits;
                var v0 = Avx512F.ShiftRightLogicalVariable(Vector512.Create(Vector256.Create(Unsafe.ReadUnaligned<uint>(p)), Vector256.Create(Unsafe.ReadUnaligned<uint>(p + bits))), shifts) & mask;
                var v1 = Avx512F.ShiftRightLogicalVariable(Vector512.Create(Vector256.Create(Unsafe.ReadUnaligned<uint>(p + 2 * bits)), Vector256.Create(Unsafe.ReadUnaligned<uint>(p + 3 * bits))), shifts) & mask;
                a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v0.AsInt32()), Avx512F.LoadVector512(x + 16 * k), a0);
                a1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v1.AsInt32()), Avx512F.LoadVector512(x + 16 * k + 16), a1);
            }
            if (k < pairs)
            {
                byte* p = row + 2 * k * bits;
                var v = Avx512F.ShiftRightLogicalVariable(Vector512.Create(Vector256.Create(Unsafe.ReadUnaligned<uint>(p)), Vector256.Create(Unsafe.ReadUnaligned<uint>(p + bits))), shifts) & mask;
                a0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(v.AsInt32()), Avx512F.LoadVector512(x + 16 * k), a0);
            }
            dots[0] += Vector512.Sum(a0 + a1);
        }
        else
        {
            Span<Vector512<float>> acc = stackalloc Vector512<float>[ICompressedMatVec.MaxBatch];
            for (int k = 0; k < pairs; k++)
            {
                byte* p = row + 2 * k * bits;
                var f = Avx512F.ConvertToVector512Single((Avx512F.ShiftRightLogicalVariable(Vector512.Create(Vector256.Create(Unsafe.ReadUnaligned<uint>(p)), Vector256.Create(Unsafe.ReadUnaligned<uint>(p + bits))), shifts) & mask).AsInt32());
                for (int b = 0; b < _batch; b++) acc[b] = Avx512F.FusedMultiplyAdd(f, Avx512F.LoadVector512(_x + b * cols + 16 * k), acc[b]);
            }
            for (int b = 0; b < _batch; b++) dots[b] += Vector512.Sum(acc[b]);
        }
        if (2 * pairs < windows) Dots256(row, 2 * pairs, windows, bits, dots);
    }
}
