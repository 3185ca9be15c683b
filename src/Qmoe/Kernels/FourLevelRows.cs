using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qmoe.Kernels;

/// <summary>
/// Row loops of <see cref="SimdCompressedMatVec"/> for coded 2-bit matrices below AVX2, where the window loops' 256/512-bit
/// permutes do not exist and the nonzero slots (two sums per row) cannot hold four levels (docs/KERNELS.md, "Coded 2-bit
/// experts"). Symbol t of row r is worth scale_r · q with q = ((t + zero_r) mod 4) − zero_r, so a row is scale_r · Σ q x.
/// <list type="bullet">
/// <item>Vector128 (SSE, NEON): each byte of a codeword's 64-bit <see cref="DecodeTable"/> entry holds the symbols of four
/// weights, and indexes <see cref="Steps"/>: their q as four floats, one table per zero point (4 × 256 × 4 floats, 16 KB,
/// L1-resident). Per codeword seven such windows (its 28 weights at most; symbols past its length are 0, whose q is 0),
/// each one load of q, one unaligned load of x at the window's position, a multiply and an add. The row's sum is scaled
/// once at its end.</item>
/// <item>Scalar: weight by weight, the row's level per symbol.</item>
/// </list>
/// Each vector of a batch runs alone through the same operations, so a batch's results equal its vectors' batch-1
/// results bitwise. x: a zero-padded copy per vector (<see cref="WindowRows.Padding"/> floats past cols); the position is
/// clamped so a corrupt row stays inside it, and a row not decoding to cols (+ &lt; 28) weights throws.
/// </summary>
internal static unsafe class FourLevelRows
{
    /// <summary>[zero point 0..3][byte b of four 2-bit symbols][weight i] = ((t_i + zero) mod 4) − zero, t_i = (b >> 2i) &amp; 3.
    /// Shared, read-only; passed to the loop as an argument (a static read in a FullOpts loop is a class-init helper call).</summary>
    internal static readonly float* Steps = BuildSteps();

    private static float* BuildSteps()
    {
        var steps = (float*)NativeMemory.AlignedAlloc(4 * 256 * 4 * sizeof(float), 64);
        for (int zero = 0; zero < 4; zero++)
            for (int b = 0; b < 256; b++)
                for (int i = 0; i < 4; i++)
                    steps[(zero * 256 + b) * 4 + i] = (((b >> (2 * i)) + zero) & 3) - zero;
        return steps;
    }

    /// <summary>y[r] = Σ_j W[r, j] x[j] for rows [r0, r1) on 128-bit vectors (see the class summary).</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Rows128(ulong* table, float* steps, ushort* allCodes, int* rowOffsets, float* gridScales, byte* gridZeros,
        int r0, int r1, int cols, float* x, float* y)
    {
        int limit = cols + DecodeTable.MaxWeights;
        for (int r = r0; r < r1; r++)
        {
            float* q = steps + (gridZeros[r] & 3) * 1024;
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* p = x, pLimit = x + limit;
            for (ushort* c = allCodes + rowOffsets[r], end = allCodes + rowOffsets[r + 1]; c < end; c++)
            {
                byte* e = (byte*)(table + *c);
                a0 += Vector128.Load(q + 4 * e[0]) * Vector128.Load(p);
                a1 += Vector128.Load(q + 4 * e[1]) * Vector128.Load(p + 4);
                a2 += Vector128.Load(q + 4 * e[2]) * Vector128.Load(p + 8);
                a3 += Vector128.Load(q + 4 * e[3]) * Vector128.Load(p + 12);
                a0 += Vector128.Load(q + 4 * e[4]) * Vector128.Load(p + 16);
                a1 += Vector128.Load(q + 4 * e[5]) * Vector128.Load(p + 20);
                a2 += Vector128.Load(q + 4 * e[6]) * Vector128.Load(p + 24);
                p += WindowRows.Length(e);
                if (p > pLimit) p = pLimit;
            }
            long pos = p - x;
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
            y[r] = gridScales[r] * Vector128.Sum((a0 + a1) + (a2 + a3));
        }
    }

    /// <summary>y[r] = Σ_j W[r, j] x[j] for rows [r0, r1), weight by weight in float, each weight its row's level.</summary>
    internal static void RowsScalar(ulong* table, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1, int cols, float* x, float* y)
    {
        int limit = cols + DecodeTable.MaxWeights;
        float* levels = stackalloc float[4];
        for (int r = r0; r < r1; r++)
        {
            rowLevels.Get(r).Store(levels);
            float sum = 0;
            long pos = 0;
            for (ushort* c = allCodes + rowOffsets[r], end = allCodes + rowOffsets[r + 1]; c < end && pos < limit; c++)
            {
                ulong e = table[*c];
                int length = (int)(e >> DecodeTable.LengthShift);
                for (int k = 0; k < length && pos < limit; k++, pos++) sum += levels[(int)(e >> (2 * k)) & 3] * x[pos];
            }
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
            y[r] = sum;
        }
    }
}
