using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// The CPU kernel. Each codeword is one 64-bit <see cref="DecodeTable"/> lookup giving the 28-bit masks of
/// its min and max weights; the row's two partial sums Σ_{t=1} x_j and Σ_{t=2} x_j then grow by masked
/// sums of the 28 floats of x at the codeword's position (two 16-lane windows with Vector512, four 8-lane
/// windows with Vector256, set-bit iteration in the scalar fallback), and the row's bf16 (min, max) apply once
/// at the end. About 20 weights per codeword at ~88% zeros make this a handful of instructions per 20
/// weights, with no branch on the data. x is copied into a zero-padded workspace so a codeword reaching past
/// the row end reads zeros, and the position is clamped so a corrupt row can never read outside it.
/// Multi-threaded over row blocks by <see cref="RowParallel"/>; allocation-free per call.
/// </summary>
public sealed unsafe class SimdCompressedMatVec : ICompressedMatVec, IRowBlockBody
{
    /// <summary>Which vector width the kernel uses on this machine.</summary>
    public enum Path { Vector512, Vector256, Scalar }

    private readonly ulong[] _table;
    private readonly RowParallel _parallel;
    private float[] _xPadded = [];   // [batch, stride], zero beyond cols
    public Path Width { get; }

    // Operands of the call in progress (pinned for its duration).
    private ushort* _codes; private int* _rowOffsets; private ushort* _scales; private float* _x; private float* _y;
    private int _rows, _cols, _batch, _stride;

    public SimdCompressedMatVec(DecodeTable table, RowParallel parallel, Path? width = null)
    {
        _table = table.Masks;
        _parallel = parallel;
        var best = Vector512.IsHardwareAccelerated ? Path.Vector512 : Vector256.IsHardwareAccelerated ? Path.Vector256 : Path.Scalar;
        if (width is { } w && w < best) throw new ArgumentException($"{w} is not accelerated on this machine", nameof(width));
        Width = width ?? best;
    }

    public void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        // Window reads reach 32 floats past a position clamped to cols + 28.
        int stride = (w.Cols + DecodeTable.MaxWeights + 32 + 15) & ~15;
        if (_xPadded.Length < batch * stride) _xPadded = new float[ICompressedMatVec.MaxBatch * stride];
        for (int b = 0; b < batch; b++)
        {
            x.Slice(b * w.Cols, w.Cols).CopyTo(_xPadded.AsSpan(b * stride));
            _xPadded.AsSpan(b * stride + w.Cols, stride - w.Cols).Clear();
        }
        fixed (ushort* codes = w.Codes) fixed (int* offsets = w.RowOffsets) fixed (ushort* scales = w.Scales)
        fixed (float* xp = _xPadded) fixed (float* yp = y)
        {
            _codes = codes; _rowOffsets = offsets; _scales = scales; _x = xp; _y = yp;
            _rows = w.Rows; _cols = w.Cols; _batch = batch; _stride = stride;
            try
            {
                _parallel.For(w.Rows, Math.Max(4, w.Rows / (16 * _parallel.Threads)), this);
            }
            finally { _codes = null; _rowOffsets = null; _scales = null; _x = null; _y = null; }
        }
    }

    void IRowBlockBody.Run(int start, int end)
    {
        fixed (ulong* table = _table)
        {
            int limit = _cols + DecodeTable.MaxWeights;
            for (int r = start; r < end; r++)
            {
                ushort* codes = _codes + _rowOffsets[r];
                int n = _rowOffsets[r + 1] - _rowOffsets[r];
                float min = BFloat16.ToFloat(_scales[2 * r]), max = BFloat16.ToFloat(_scales[2 * r + 1]);
                for (int b = 0; b < _batch; b++)
                {
                    float* x = _x + b * _stride;
                    var (sumMin, sumMax, pos) = Width switch
                    {
                        Path.Vector512 => Row512(table, codes, n, x, limit),
                        Path.Vector256 => Row256(table, codes, n, x, limit),
                        _ => RowScalar(table, codes, n, x, limit),
                    };
                    if (pos < _cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, _cols);
                    _y[b * _rows + r] = min * sumMin + max * sumMax;
                }
            }
        }
    }

    private static readonly Vector512<uint> LaneBits512 = Vector512.Create(1u, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
    private static readonly Vector256<uint> LaneBits256 = Vector256.Create(1u, 2, 4, 8, 16, 32, 64, 128);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Select512(Vector512<uint> bits, Vector512<uint> lane, Vector512<float> x) =>
        x & Vector512.Equals(bits & lane, lane).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Select256(Vector256<uint> bits, Vector256<uint> lane, Vector256<float> x) =>
        x & Vector256.Equals(bits & lane, lane).AsSingle();

    // x: padded; returns the row's min and max partial sums and the decoded length (clamped to limit).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float, float, int) Row512(ulong* table, ushort* codes, int n, float* x, int limit)
    {
        var lo = LaneBits512; var hi = LaneBits512 << 16;
        var accMin = Vector512<float>.Zero; var accMax = Vector512<float>.Zero;
        int pos = 0;
        for (int i = 0; i < n; i++)
        {
            ulong e = table[codes[i]];
            var x0 = Vector512.Load(x + pos); var x1 = Vector512.Load(x + pos + 16);
            var bMin = Vector512.Create((uint)e & 0x0FFFFFFF); var bMax = Vector512.Create((uint)(e >> 32));
            accMin += Select512(bMin, lo, x0) + Select512(bMin, hi, x1);
            accMax += Select512(bMax, lo, x0) + Select512(bMax, hi, x1);
            pos = Math.Min(pos + 2 * (int)((uint)e >> 28), limit);
        }
        return (Vector512.Sum(accMin), Vector512.Sum(accMax), pos);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float, float, int) Row256(ulong* table, ushort* codes, int n, float* x, int limit)
    {
        var b0 = LaneBits256; var b1 = b0 << 8; var b2 = b0 << 16; var b3 = b0 << 24;
        var accMin = Vector256<float>.Zero; var accMax = Vector256<float>.Zero;
        int pos = 0;
        for (int i = 0; i < n; i++)
        {
            ulong e = table[codes[i]];
            var x0 = Vector256.Load(x + pos); var x1 = Vector256.Load(x + pos + 8);
            var x2 = Vector256.Load(x + pos + 16); var x3 = Vector256.Load(x + pos + 24);
            var bMin = Vector256.Create((uint)e & 0x0FFFFFFF); var bMax = Vector256.Create((uint)(e >> 32));
            accMin += (Select256(bMin, b0, x0) + Select256(bMin, b1, x1)) + (Select256(bMin, b2, x2) + Select256(bMin, b3, x3));
            accMax += (Select256(bMax, b0, x0) + Select256(bMax, b1, x1)) + (Select256(bMax, b2, x2) + Select256(bMax, b3, x3));
            pos = Math.Min(pos + 2 * (int)((uint)e >> 28), limit);
        }
        return (Vector256.Sum(accMin), Vector256.Sum(accMax), pos);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float, float, int) RowScalar(ulong* table, ushort* codes, int n, float* x, int limit)
    {
        float sumMin = 0, sumMax = 0;
        int pos = 0;
        for (int i = 0; i < n; i++)
        {
            ulong e = table[codes[i]];
            for (uint m = (uint)e & 0x0FFFFFFF; m != 0; m &= m - 1) sumMin += x[pos + BitOperations.TrailingZeroCount(m)];
            for (uint m = (uint)(e >> 32); m != 0; m &= m - 1) sumMax += x[pos + BitOperations.TrailingZeroCount(m)];
            pos = Math.Min(pos + 2 * (int)((uint)e >> 28), limit);
        }
        return (sumMin, sumMax, pos);
    }
}
