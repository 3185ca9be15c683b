using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qmoe.Numerics;

namespace Qmoe.Kernels;

/// <summary>
/// Row loop of <see cref="SimdCompressedMatVec"/> for matrices of at most <see cref="MaxCols"/> columns on AVX-512 with
/// VBMI, at every batch, in place of <see cref="WindowRows"/> and the nonzero slots (docs/KERNELS.md, "Position windows
/// for short rows"). Each row is first decoded into one
/// trit byte per weight: per codeword one <c>vpmultishiftqb</c> spreads the 64-bit <see cref="DecodeTable"/> entry to 32
/// bytes (byte k = the entry's bits 2k..2k+7, whose low two bits are trit k) and one 32-byte store at the codeword's
/// position; the next codeword's store overwrites the bytes past this one's length. Then 16-lane windows at fixed
/// positions: zero-extend 16 bytes, permute the row's levels [0, min, max, 0] (replicated, so only a byte's low two bits
/// matter), one FMA per vector. The window's weights are decoded once for all vectors and x is read at 16-aligned
/// positions, so further vectors cost one load and one FMA per 16 weights (the window loop: two loads, mostly split,
/// and two FMAs per codeword). The next row is decoded before the current row's windows, so the two overlap.
/// Every vector runs the same operations in the same order whatever the batch: batch-invariant as the window loop is.
/// </summary>
internal static unsafe class PositionRows
{
    /// <summary>Widest rows this loop takes: x for four vectors (16 KB; eight, 32 KB) and the row buffers stay in L1. On
    /// longer rows (switch-base-128's wo, 3,072) four vectors measured as slow as the window loop and batch 1 slower.</summary>
    public const int MaxCols = 1024;

    /// <summary>Whether this CPU runs it (AVX-512 VBMI for the byte spread).</summary>
    public static bool IsSupported => Avx512Vbmi.VL.IsSupported && Avx512F.IsSupported;

    // Bytes per row buffer: decoded positions may reach MaxCols + 27 before the clamp, an unrolled step runs up to 3
    // codewords (84 positions) past it, and each store writes 32 bytes; rounded to whole cache lines.
    private const int RowBuffer = (MaxCols + DecodeTable.MaxWeights + 3 * DecodeTable.MaxWeights + 32 + 63) / 64 * 64;

    /// <summary>
    /// y[r] = Σ_j W[r, j] x[j] for rows [r0, r1), and with TVectors.Count = N (1–8) the same for x + v·second into
    /// y[r + v·yNext], v &lt; N. x: zero-padded to at least cols rounded up to 32 (a whole number of window pairs), and
    /// 64-byte aligned for speed (not required). A row's decoded length (clamped to cols + 28) must be cols + 0..27,
    /// else it throws. cols ≤ <see cref="MaxCols"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Rows512<TVectors>(ulong* table, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1,
        int cols, float* x, nint second, float* y, nint yNext) where TVectors : struct, IVectorCount
    {
        if (cols > MaxCols) throw new ArgumentOutOfRangeException(nameof(cols), cols, $"at most {MaxCols} columns");
        if (r0 >= r1) return;
        int count = TVectors.Count;
        byte* buffers = stackalloc byte[2 * RowBuffer + 64]; // a small constant: MaxCols bounds it
        byte* current = (byte*)(((nint)buffers + 63) & ~(nint)63), next = current + RowBuffer;
        // Byte k of the spread takes the entry's bits from 2k: trit k in its low two bits.
        var spread = Vector256.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
            32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62);
        Decode(table, allCodes, rowOffsets, r0, cols, current, spread);
        for (int r = r0; r < r1; r++)
        {
            if (r + 1 < r1) Decode(table, allCodes, rowOffsets, r + 1, cols, next, spread);
            var levels = WindowRows.Levels512(rowLevels, r);
            // Two accumulators per vector (even and odd windows): 16 registers at 8 vectors, with the two windows and
            // the levels 19 of the 32.
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
            Vector512<float> e0 = default, e1 = default, f0 = default, f1 = default, g0 = default, g1 = default, h0 = default, h1 = default;
            for (int j = 0; j < cols; j += 32)
            {
                var w0 = Avx512F.PermuteVar16x32(levels, Avx512F.ConvertToVector512Int32(Vector128.LoadAligned(current + j)));
                var w1 = Avx512F.PermuteVar16x32(levels, Avx512F.ConvertToVector512Int32(Vector128.LoadAligned(current + j + 16)));
                float* xj = x + j;
                Accumulate(xj, w0, w1, ref a0, ref a1);
                if (count > 1) Accumulate(xj + second, w0, w1, ref b0, ref b1);
                if (count > 2) Accumulate(xj + 2 * second, w0, w1, ref c0, ref c1);
                if (count > 3) Accumulate(xj + 3 * second, w0, w1, ref d0, ref d1);
                if (count > 4) Accumulate(xj + 4 * second, w0, w1, ref e0, ref e1);
                if (count > 5) Accumulate(xj + 5 * second, w0, w1, ref f0, ref f1);
                if (count > 6) Accumulate(xj + 6 * second, w0, w1, ref g0, ref g1);
                if (count > 7) Accumulate(xj + 7 * second, w0, w1, ref h0, ref h1);
            }
            y[r] = HorizontalSum.Sum(a0 + a1);
            if (count > 1) y[r + yNext] = HorizontalSum.Sum(b0 + b1);
            if (count > 2) y[r + 2 * yNext] = HorizontalSum.Sum(c0 + c1);
            if (count > 3) y[r + 3 * yNext] = HorizontalSum.Sum(d0 + d1);
            if (count > 4) y[r + 4 * yNext] = HorizontalSum.Sum(e0 + e1);
            if (count > 5) y[r + 5 * yNext] = HorizontalSum.Sum(f0 + f1);
            if (count > 6) y[r + 6 * yNext] = HorizontalSum.Sum(g0 + g1);
            if (count > 7) y[r + 7 * yNext] = HorizontalSum.Sum(h0 + h1);
            byte* done = current; current = next; next = done;
        }
    }

    /// <summary><see cref="Rows512{TVectors}"/> with TVectors.Count = <paramref name="vectors"/> (1–8).</summary>
    internal static void Rows512(int vectors, ulong* table, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1,
        int cols, float* x, nint second, float* y, nint yNext)
    {
        switch (vectors)
        {
            case 1: Rows512<OneVector>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 2: Rows512<TwoVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 3: Rows512<ThreeVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 4: Rows512<FourVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 5: Rows512<FiveVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 6: Rows512<SixVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 7: Rows512<SevenVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            case 8: Rows512<EightVectors>(table, allCodes, rowOffsets, rowLevels, r0, r1, cols, x, second, y, yNext); break;
            default: throw new ArgumentOutOfRangeException(nameof(vectors), vectors, "1 to 8 vectors");
        }
    }

    /// <summary>One vector's FMAs for a window pair: x[0..16) with w0, x[16..32) with w1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(float* x, Vector512<float> w0, Vector512<float> w1, ref Vector512<float> acc0, ref Vector512<float> acc1)
    {
        acc0 = Vector512.FusedMultiplyAdd(Vector512.Load(x), w0, acc0);
        acc1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 16), w1, acc1);
    }

    // Row r's trits, one byte per weight, into buf[0 .. cols + 27] (bytes past the row's last codeword hold its spread
    // of the length field and stale bytes, all at positions ≥ cols, where x is zero). Four codewords per step, their
    // lengths summed off the position chain, one clamp per step (so a corrupt row stays inside the buffer); then the row's
    // last 0..3 codewords one by one.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Decode(ulong* table, ushort* allCodes, int* rowOffsets, int r, int cols, byte* buf, Vector256<byte> spread)
    {
        int limit = cols + DecodeTable.MaxWeights;
        ushort* c = allCodes + rowOffsets[r], end = allCodes + rowOffsets[r + 1];
        byte* p = buf, pLimit = buf + limit;
        for (; c + 4 <= end; c += 4)
        {
            ulong* e0 = table + c[0], e1 = table + c[1], e2 = table + c[2], e3 = table + c[3];
            nint l0 = WindowRows.Length(e0), l1 = WindowRows.Length(e1), l2 = WindowRows.Length(e2), l3 = WindowRows.Length(e3);
            byte* p2 = p + (l0 + l1);
            Avx512Vbmi.VL.MultiShift(spread, Vector256.Create(*e0)).Store(p);
            Avx512Vbmi.VL.MultiShift(spread, Vector256.Create(*e1)).Store(p + l0);
            Avx512Vbmi.VL.MultiShift(spread, Vector256.Create(*e2)).Store(p2);
            Avx512Vbmi.VL.MultiShift(spread, Vector256.Create(*e3)).Store(p2 + l2);
            p = p2 + (l2 + l3);
            if (p > pLimit) p = pLimit;
        }
        for (; c < end; c++)
        {
            ulong* e = table + *c;
            Avx512Vbmi.VL.MultiShift(spread, Vector256.Create(*e)).Store(p);
            p += WindowRows.Length(e);
            if (p > pLimit) p = pLimit;
        }
        long pos = p - buf;
        if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
    }
}
