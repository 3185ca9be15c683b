using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Qmoe.IO;
using Qmoe.Numerics;

namespace Qmoe.Kernels;

/// <summary>
/// Row loops of <see cref="SimdCompressedMatVec"/> on AVX-512 and AVX2 for batches 1 and 2, where they measured faster
/// than the nonzero slots (docs/KERNELS.md), and for every vector of a batch-invariant decode step (<see cref="BatchInvariance"/>):
/// each codeword is one 64-bit <see cref="DecodeTable"/> lookup holding the 2-bit trits of its (up to) 28 weights. Per 16-lane window (8 with Vector256): broadcast the 32 bits holding the window's
/// trits, shift lane i right by 2i so its trit lands in the low bits, and use that as the index of a permute of the
/// row's level vector [0, min, max, 0] (replicated, so the next trit's bits above are ignored): the dequantized
/// weights of the window in three instructions, then an FMA with the x window at the codeword's position. Lanes past
/// a codeword's 28 weights get a shift ≥ 32, i.e. index 0, level 0. x is a zero-padded copy (<see cref="Padding"/>
/// floats past cols) so a codeword reaching past the row end reads zeros, and the position is clamped so a corrupt row
/// can never read outside it.
/// </summary>
internal static unsafe class WindowRows
{
    /// <summary>Zero floats needed past cols: window reads reach 32 floats past a position clamped to cols + 28, plus Unroll - 1 unclamped codewords (in a step or the final masked step).</summary>
    public const int Padding = Unroll * DecodeTable.MaxWeights + 32 + 16;

    // Per-lane right shifts: lane i of a window takes trit i of its 32-bit half; 32 (→ 0) past weight 27.
    // The shift vectors are constants written at their use (Vector512.Create of literals), not static readonly fields:
    // the row loops are compiled FullOpts at once, where a static read is a class-init helper call, and around such
    // calls the JIT kept the loop's vectors and pointers in stack slots (a store and reload every step). For the same
    // reason the zero entry comes in as a parameter.

    // Codewords per unrolled step. Within a step positions are not clamped (only at its end), so they can run
    // (Unroll - 1) codewords past the clamp limit: the workspace pads for that.
    internal const int Unroll = 4;

    /// <summary>A decode-table entry of all zeros: length 0, every trit 0 (level 0). The final step of a row reads it
    /// in place of codewords past the row's end, so that step needs no branch. Shared, read-only.</summary>
    internal static readonly ulong* ZeroEntry = (ulong*)NativeMemory.AllocZeroed(64);

    /// <summary>
    /// The entry of codeword <c>c[j]</c> when <c>j &lt; remaining</c>, else <see cref="ZeroEntry"/> (reading c[-1],
    /// which exists since every row holds ≥ 1 codeword), by masks instead of branches: a row's 0..3 last codewords
    /// vary from row to row, and a tail loop over them measured ~1 branch miss per row (~15% of wi's time).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint* TailEntry(ulong* table, ulong* zero, ushort* c, nint j, nint remaining)
    {
        nint real = (j - remaining) >> 63; // all ones when j < remaining
        ulong* e = table + c[((j + 1) & real) - 1];
        return (uint*)((nint)zero + (((nint)e - (nint)zero) & real));
    }

    // Rows512 sums Σ_j W[r, j] x[j] for rows [start, end) into y[r], and with TVectors.Count = N > 1 (up to 4) the same
    // for N - 1 more x at x + second, x + 2·second, ... (same padding) into y[r + yNext], y[r + 2·yNext], ...; x: padded.
    // A row's decoded length (clamped to cols + 28) must be cols + 0..27, else it throws. The x pointer is the
    // loop-carried dependency; it advances a whole step with adds (the codewords' lengths summed off that chain) and a
    // never-taken clamp branch. Each vector has four accumulators: the low and high window of the step's even and odd
    // codewords (two FMAs per accumulator per step, well within the FMA latency). Rows end with one masked step for
    // their last 0..3 codewords (TailEntry), not a loop. With N vectors each window is decoded once and multiplied into
    // all of them, every vector through exactly the operations it would see alone (its sum is bitwise the one-vector
    // sum: batch-invariant decode steps, BatchInvariance). Four accumulators per vector, not one per window of a step,
    // so that four vectors fit the 32 registers (16 accumulators): measured as fast at batch 1, and each further vector
    // costs about half a lone one (its x loads mostly split cache lines).
    // Each is its own fully optimized method with the row loop inside: inlined into a caller's row loop, a
    // many-accumulator body exceeded the JIT's inlinee limits and ran as a tier-0 call.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Rows512<TVectors>(ulong* table, ulong* zero, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1,
        int cols, float* x, nint second, float* y, nint yNext) where TVectors : struct, IVectorCount
    {
        int limit = cols + DecodeTable.MaxWeights;
        int count = TVectors.Count;
        var lo = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var hi = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 32, 32, 32, 32);
        for (int r = r0; r < r1; r++)
        {
            ushort* codes = allCodes + rowOffsets[r];
            int n = rowOffsets[r + 1] - rowOffsets[r];
            var levels = Levels512(rowLevels, r);
            // Accumulators: vector v's even (e) and odd (o) codewords' low (l) and high (h) windows.
            Vector512<float> el0 = default, eh0 = default, ol0 = default, oh0 = default, el1 = default, eh1 = default, ol1 = default, oh1 = default;
            Vector512<float> el2 = default, eh2 = default, ol2 = default, oh2 = default, el3 = default, eh3 = default, ol3 = default, oh3 = default;
            float* xp = x, xLimit = x + limit;
            ushort* c = codes, end = codes + n;
            for (; c + Unroll <= end; c += Unroll)
            {
                uint* e0 = (uint*)(table + c[0]); uint* e1 = (uint*)(table + c[1]);
                uint* e2 = (uint*)(table + c[2]); uint* e3 = (uint*)(table + c[3]);
                float* x1 = xp + Length(e0), x2 = x1 + Length(e1), x3 = x2 + Length(e2);
                Code512<TVectors>(xp, second, e0, levels, lo, hi, ref el0, ref eh0, ref el1, ref eh1, ref el2, ref eh2, ref el3, ref eh3);
                Code512<TVectors>(x1, second, e1, levels, lo, hi, ref ol0, ref oh0, ref ol1, ref oh1, ref ol2, ref oh2, ref ol3, ref oh3);
                Code512<TVectors>(x2, second, e2, levels, lo, hi, ref el0, ref eh0, ref el1, ref eh1, ref el2, ref eh2, ref el3, ref eh3);
                Code512<TVectors>(x3, second, e3, levels, lo, hi, ref ol0, ref oh0, ref ol1, ref oh1, ref ol2, ref oh2, ref ol3, ref oh3);
                xp = x3 + Length(e3);
                if (xp > xLimit) xp = xLimit;
            }
            {
                nint remaining = (nint)(end - c); // 0..3
                uint* e0 = TailEntry(table, zero, c, 0, remaining), e1 = TailEntry(table, zero, c, 1, remaining), e2 = TailEntry(table, zero, c, 2, remaining);
                float* x1 = xp + Length(e0), x2 = x1 + Length(e1);
                Code512<TVectors>(xp, second, e0, levels, lo, hi, ref el0, ref eh0, ref el1, ref eh1, ref el2, ref eh2, ref el3, ref eh3);
                Code512<TVectors>(x1, second, e1, levels, lo, hi, ref ol0, ref oh0, ref ol1, ref oh1, ref ol2, ref oh2, ref ol3, ref oh3);
                Code512<TVectors>(x2, second, e2, levels, lo, hi, ref el0, ref eh0, ref el1, ref eh1, ref el2, ref eh2, ref el3, ref eh3);
                xp = x2 + Length(e2);
                if (xp > xLimit) xp = xLimit;
            }
            int pos = (int)(xp - x);
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
            y[r] = HorizontalSum.Sum((el0 + eh0) + (ol0 + oh0));
            if (count > 1) y[r + yNext] = HorizontalSum.Sum((el1 + eh1) + (ol1 + oh1));
            if (count > 2) y[r + 2 * yNext] = HorizontalSum.Sum((el2 + eh2) + (ol2 + oh2));
            if (count > 3) y[r + 3 * yNext] = HorizontalSum.Sum((el3 + eh3) + (ol3 + oh3));
        }
    }

    // DecodeRows512/256: rows [r0, r1) of W as dense f32 into dst, row r at (r − r0)·cols: each codeword's windows (the same
    // three instructions as above) stored at its position instead of multiplied. A codeword's lanes past its length
    // hold level 0, and the next codeword's stores, which come later, overwrite them; so a row's last stores reach up
    // to Padding floats past its end (zeros or the clamped tail of a corrupt row), which the next row overwrites in
    // turn: rows are decoded in order, and dst holds Padding floats past the last row. A row's decoded length is
    // checked as in the row loops. The values are exactly the row's levels (0, min, max; or a coded 2-bit row's four):
    // the decode is bitwise the scalar one.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void DecodeRows512(ulong* table, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1, int cols, float* dst)
    {
        int limit = cols + DecodeTable.MaxWeights;
        var lo = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        var hi = Vector512.Create(0u, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 32, 32, 32, 32);
        for (int r = r0; r < r1; r++)
        {
            ushort* c = allCodes + rowOffsets[r], end = allCodes + rowOffsets[r + 1];
            var levels = Levels512(rowLevels, r);
            float* row = dst + (long)(r - r0) * cols, p = row, pLimit = row + limit;
            for (; c < end; c++)
            {
                uint* e = (uint*)(table + *c);
                Window512(e[0], levels, lo).Store(p);
                Window512(e[1], levels, hi).Store(p + 16);
                p += Length(e);
                if (p > pLimit) p = pLimit;
            }
            long pos = p - row;
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void DecodeRows256(ulong* table, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1, int cols, float* dst)
    {
        int limit = cols + DecodeTable.MaxWeights;
        var sa = Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14);
        var sb = Vector256.Create(16u, 18, 20, 22, 24, 26, 28, 30);
        var sd = Vector256.Create(16u, 18, 20, 22, 32, 32, 32, 32);
        for (int r = r0; r < r1; r++)
        {
            ushort* c = allCodes + rowOffsets[r], end = allCodes + rowOffsets[r + 1];
            var levels = Levels256(rowLevels, r);
            float* row = dst + (long)(r - r0) * cols, p = row, pLimit = row + limit;
            for (; c < end; c++)
            {
                uint* e = (uint*)(table + *c);
                var tLo = Vector256.Create(e[0]); var tHi = Vector256.Create(e[1]);
                Window256(tLo, levels, sa).Store(p);
                Window256(tLo, levels, sb).Store(p + 8);
                Window256(tHi, levels, sa).Store(p + 16);
                Window256(tHi, levels, sd).Store(p + 24);
                p += Length(e);
                if (p > pLimit) p = pLimit;
            }
            long pos = p - row;
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
        }
    }

    // One codeword's two 16-lane windows: each decoded once, then times x at the codeword's position into (l0, h0), and
    // for each further vector v times its x (at x + v·second) into (lv, hv), in the same order.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Code512<TVectors>(float* x, nint second, uint* entry, Vector512<float> levels, Vector512<uint> lo, Vector512<uint> hi,
        ref Vector512<float> l0, ref Vector512<float> h0, ref Vector512<float> l1, ref Vector512<float> h1,
        ref Vector512<float> l2, ref Vector512<float> h2, ref Vector512<float> l3, ref Vector512<float> h3) where TVectors : struct, IVectorCount
    {
        int count = TVectors.Count;
        var w = Window512(entry[0], levels, lo);
        l0 = Vector512.FusedMultiplyAdd(Vector512.Load(x), w, l0);
        if (count > 1) l1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + second), w, l1);
        if (count > 2) l2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * second), w, l2);
        if (count > 3) l3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * second), w, l3);
        w = Window512(entry[1], levels, hi);
        h0 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 16), w, h0);
        if (count > 1) h1 = Vector512.FusedMultiplyAdd(Vector512.Load(x + second + 16), w, h1);
        if (count > 2) h2 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 2 * second + 16), w, h2);
        if (count > 3) h3 = Vector512.FusedMultiplyAdd(Vector512.Load(x + 3 * second + 16), w, h3);
    }

    /// <summary>Weights covered by a decode-table entry: its top byte (bits 56..63). Read as its own byte load so
    /// the trit words stay memory operands of the broadcasts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static nint Length(void* entry) => ((byte*)entry)[DecodeTable.LengthShift / 8];

    // The dequantized weights of one 16-lane window: the 32 trit bits broadcast straight from the table (a load,
    // no shuffle-port work), lane i shifted right by its own count, then used as a permute index into the levels.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Window512(uint trits, Vector512<float> levels, Vector512<uint> shifts) =>
        Avx512F.PermuteVar16x32(levels, Avx512F.ShiftRightLogicalVariable(Vector512.Create(trits), shifts).AsInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Levels512(RowLevels rowLevels, int r)
    {
        var l4 = rowLevels.Get(r);
        return Vector512.Create(Vector256.Create(l4, l4), Vector256.Create(l4, l4));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Levels256(RowLevels rowLevels, int r)
    {
        var l4 = rowLevels.Get(r);
        return Vector256.Create(l4, l4);
    }

    // The dequantized weights of one 8-lane window, from the broadcast 32 bits holding 16 trits of a codeword (one
    // broadcast serves two windows: shifts 0..14 for trits 0..7, 16..30 for trits 8..15).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Window256(Vector256<uint> trits, Vector256<float> levels, Vector256<uint> shifts) =>
        Avx2.PermuteVar8x32(levels, Avx2.ShiftRightLogicalVariable(trits, shifts).AsInt32());

    // Rows256: as Rows512 with 8-lane windows, for one or two vectors (TVectors.Count ≤ 2: the 16 registers hold the
    // windows, shifts and four accumulators per vector, one per codeword of a step).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static void Rows256<TVectors>(ulong* table, ulong* zero, ushort* allCodes, int* rowOffsets, RowLevels rowLevels, int r0, int r1,
        int cols, float* x, nint second, float* y, nint yNext) where TVectors : struct, IVectorCount
    {
        int limit = cols + DecodeTable.MaxWeights;
        bool two = TVectors.Count > 1;
        var sa = Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14);
        var sb = Vector256.Create(16u, 18, 20, 22, 24, 26, 28, 30);
        var sd = Vector256.Create(16u, 18, 20, 22, 32, 32, 32, 32);
        for (int r = r0; r < r1; r++)
        {
            ushort* codes = allCodes + rowOffsets[r];
            int n = rowOffsets[r + 1] - rowOffsets[r];
            var levels = Levels256(rowLevels, r);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
            float* xp = x, xLimit = x + limit;
            ushort* c = codes, end = codes + n;
            for (; c + Unroll <= end; c += Unroll)
            {
                uint* e0 = (uint*)(table + c[0]); uint* e1 = (uint*)(table + c[1]);
                uint* e2 = (uint*)(table + c[2]); uint* e3 = (uint*)(table + c[3]);
                nint l0 = Length(e0), l1 = Length(e1), l2 = Length(e2), l3 = Length(e3);
                float* x2 = xp + (l0 + l1);
                Code256<TVectors>(xp, second, e0, levels, sa, sb, sd, ref a0, ref b0);
                Code256<TVectors>(xp + l0, second, e1, levels, sa, sb, sd, ref a1, ref b1);
                Code256<TVectors>(x2, second, e2, levels, sa, sb, sd, ref a2, ref b2);
                Code256<TVectors>(x2 + l2, second, e3, levels, sa, sb, sd, ref a3, ref b3);
                xp = x2 + (l2 + l3);
                if (xp > xLimit) xp = xLimit;
            }
            {
                nint remaining = (nint)(end - c); // 0..3
                uint* e0 = TailEntry(table, zero, c, 0, remaining), e1 = TailEntry(table, zero, c, 1, remaining), e2 = TailEntry(table, zero, c, 2, remaining);
                float* x1 = xp + Length(e0), x2 = x1 + Length(e1);
                Code256<TVectors>(xp, second, e0, levels, sa, sb, sd, ref a0, ref b0);
                Code256<TVectors>(x1, second, e1, levels, sa, sb, sd, ref a1, ref b1);
                Code256<TVectors>(x2, second, e2, levels, sa, sb, sd, ref a2, ref b2);
                xp = x2 + Length(e2);
                if (xp > xLimit) xp = xLimit;
            }
            int pos = (int)(xp - x);
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
            y[r] = HorizontalSum.Sum((a0 + a1) + (a2 + a3));
            if (two) y[r + yNext] = HorizontalSum.Sum((b0 + b1) + (b2 + b3));
        }
    }

    // One codeword's 28 weights in four 8-lane windows, added to a (and, with two vectors, the same weights times the
    // second x added to b, in the same order).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Code256<TVectors>(float* x, nint second, uint* entry, Vector256<float> levels, Vector256<uint> sa, Vector256<uint> sb,
        Vector256<uint> sd, ref Vector256<float> a, ref Vector256<float> b) where TVectors : struct, IVectorCount
    {
        var tLo = Vector256.Create(entry[0]); var tHi = Vector256.Create(entry[1]);
        var w0 = Window256(tLo, levels, sa);
        var w1 = Window256(tLo, levels, sb);
        var w2 = Window256(tHi, levels, sa);
        var w3 = Window256(tHi, levels, sd);
        a += Fma.MultiplyAdd(Vector256.Load(x + 8), w1, Vector256.Load(x) * w0)
           + Fma.MultiplyAdd(Vector256.Load(x + 24), w3, Vector256.Load(x + 16) * w2);
        if (TVectors.Count > 1)
        {
            float* y = x + second;
            b += Fma.MultiplyAdd(Vector256.Load(y + 8), w1, Vector256.Load(y) * w0)
               + Fma.MultiplyAdd(Vector256.Load(y + 24), w3, Vector256.Load(y + 16) * w2);
        }
    }
}
