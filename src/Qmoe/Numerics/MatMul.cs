using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    /// <summary>Up to this many rows of X use the dot-product path (each tile of W rows swept by every DotRows rows of X
    /// while in L1); more use the GEMM. The GEMM's packing costs more than it saves below ~32 rows: at 12–24 rows it took
    /// 1.2–2.7× the time of the dot path on 192×192 to 768×768 f32 and 1024–4096×4096 bf16 (one thread, AMD EPYC Zen 5,
    /// docs/KERNELS.md); at 32 the two were even, at 48 the GEMM won.</summary>
    internal const int DotPathMaxRows = 24;
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
            for (int j = u * unitRows; j < j1; j += TileRows)
                for (int i0 = 0; i0 < m; i0 += DotRows)
                    DotTile((float*)px + (long)i0 * k, (byte*)pw, bf16, k, Math.Min(DotRows, m - i0), j, Math.Min(j1, j + TileRows), (float*)py + (long)i0 * n, n);
        });
    }

    // The dot path's tiles: TileRows rows of W against up to DotRows rows of X. Each (X row, W row) pair has its own
    // accumulators (two vectors: for bf16 the low and high 16 of each 32 weights, for f32 the first only), kept in a
    // 1 KB slot per W row between k blocks. With few or short rows of X the tile sweeps all of k at once; when the X
    // rows outgrow L1 (8 rows of k = 4096 are 128 KB, re-read from L2 for every W row) it sweeps k in blocks of
    // BlockK, so a block of X (rows x 1 KB) is read from L1 by all the tile's W rows. Blocking moves accumulators
    // through memory and changes no operation: a pair's result does not depend on the row count, on m or on the
    // blocking. Measured on W 32000 x 4096 bf16, 8 rows of X, one thread (AMD EPYC Zen 5, AVX-512; old and new build
    // in alternating processes): 55-58 ms unblocked (one row of X: 17-19 ms), 40-51 ms blocked, 28-36 ms blocked with
    // the prefetch below; AVX2 (tiles of 4 rows), 4 rows of X: 34 -> 24-33 ms.
    private const int TileRows = 16, BlockK = 256, BlockedXBytes = 24 << 10, AccPerRow = 16;
    // One row of X streams W once (generation's batch 1: the head is 32000 x 4096 bf16 per token). With 512-bit
    // vectors a software prefetch this many bytes ahead, one per 64-byte step, took W 4096 x 4096 bf16 from 2.0 to
    // 1.55 ms and 32000 x 4096 from 17.3-17.7 to 13.9-14.6 ms (one thread, AMD EPYC Zen 5, alternating processes);
    // on the 256-bit path (two steps per line) it cost 10%, so that path has none. A hint only: a prefetch past
    // the end of W never faults.
    private const int PrefetchAhead = 1024;

    /// <summary>The vector width of a product: it depends on k and the format only, never on the rows of X.</summary>
    private enum DotPath { Scalar, V256, V512 }

    private static DotPath PathFor(bool bf16, int k) =>
        Vector512.IsHardwareAccelerated && k >= (bf16 ? 32 : 16) ? DotPath.V512
        : Vector256.IsHardwareAccelerated && k >= (bf16 ? 16 : 8) ? DotPath.V256 : DotPath.Scalar;

    /// <summary>Weights per vector step (bf16 steps cover two vectors of f32).</summary>
    private static int StepOf(DotPath path, bool bf16) => path switch { DotPath.V512 => bf16 ? 32 : 16, DotPath.V256 => bf16 ? 16 : 8, _ => 1 };

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

    // y[r * ldy + j] = x[r, :] · W[j, :] for r < rows (1..8), j in [j0, j1).
    private static void DotTile(float* x, byte* w, bool bf16, int k, int rows, int j0, int j1, float* y, int ldy)
    {
        switch (rows)
        {
            case 1: DotTile<R1>(x, w, bf16, k, j0, j1, y, ldy); break;
            case 2: DotTile<R2>(x, w, bf16, k, j0, j1, y, ldy); break;
            case 3: DotTile<R3>(x, w, bf16, k, j0, j1, y, ldy); break;
            case 4: DotTile<R4>(x, w, bf16, k, j0, j1, y, ldy); break;
            case 5: DotTile<R5>(x, w, bf16, k, j0, j1, y, ldy); break;
            case 6: DotTile<R6>(x, w, bf16, k, j0, j1, y, ldy); break;
            case 7: DotTile<R7>(x, w, bf16, k, j0, j1, y, ldy); break;
            default: DotTile<R8>(x, w, bf16, k, j0, j1, y, ldy); break;
        }
    }

    private static void DotTile<TRows>(float* x, byte* w, bool bf16, int k, int j0, int j1, float* y, int ldy) where TRows : struct, IRows
    {
        int rows = TRows.Count, elem = bf16 ? 2 : 4;
        var path = PathFor(bf16, k);
        int vectorEnd = path == DotPath.Scalar ? 0 : k - k % StepOf(path, bf16);
        if (vectorEnd > 0 && rows > 1 && (long)rows * k * sizeof(float) > BlockedXBytes)
        {
            DotTileBlocked<TRows>(x, w, bf16, k, path, vectorEnd, j0, j1, y, ldy);
            return;
        }
        if (path == DotPath.V512) { Rows<TRows, Vector512<float>>(x, w, bf16, k, vectorEnd, j0, j1, y, ldy); return; }
        if (path == DotPath.V256) { Rows<TRows, Vector256<float>>(x, w, bf16, k, vectorEnd, j0, j1, y, ldy); return; }
        float* sums = stackalloc float[8];
        new Span<float>(sums, rows).Clear();
        for (int j = j0; j < j1; j++) Tail<TRows>(x, w + (long)j * k * elem, bf16, k, 0, sums, y + j, ldy); // scalar: k too short for a vector
    }

    // The unblocked tile's W rows [j0, j1), each swept whole (SpanF32/SpanBf16's operations, inlined; f32 rows two at a
    // time, SweepF32Pair) and finished by its tail, in one call: a call per W row cost as much as a short row's FMAs
    // (k = 192 on the tiny models' attention and head, where these calls were ~20% of a batched decode step).
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void Rows<TRows, TVec>(float* x, byte* w, bool bf16, int k, int vectorEnd, int j0, int j1, float* y, int ldy)
        where TRows : struct, IRows where TVec : unmanaged
    {
        float* sums = stackalloc float[16];
        int j = j0;
        if (!bf16)
            for (; j + 2 <= j1; j += 2)
            {
                float* wj = (float*)w + (long)j * k;
                SweepF32Pair<TRows, TVec>(x, wj, k, vectorEnd, sums);
                Tail<TRows>(x, (byte*)wj, false, k, vectorEnd, sums, y + j, ldy);
                Tail<TRows>(x, (byte*)(wj + k), false, k, vectorEnd, sums + 8, y + j + 1, ldy);
            }
        for (; j < j1; j++)
        {
            byte* wj = w + (long)j * k * (bf16 ? 2 : 4);
            if (bf16) SweepBf16<TRows, TVec>(x, (ushort*)wj, k, 0, vectorEnd, null, true, true, sums);
            else SweepF32<TRows, TVec>(x, (float*)wj, k, 0, vectorEnd, null, true, true, sums);
            Tail<TRows>(x, wj, bf16, k, vectorEnd, sums, y + j, ldy);
        }
    }

    /// <summary>As <see cref="DotTile{TRows}"/>, sweeping k in blocks of <see cref="BlockK"/> (vectorEnd > 0 here).</summary>
    [SkipLocalsInit] // acc and sums are written before they are read
    private static void DotTileBlocked<TRows>(float* x, byte* w, bool bf16, int k, DotPath path, int vectorEnd, int j0, int j1, float* y, int ldy)
        where TRows : struct, IRows
    {
        int elem = bf16 ? 2 : 4;
        Vector512<float>* acc = stackalloc Vector512<float>[TileRows * AccPerRow]; // 16 KB
        float* sums = stackalloc float[TileRows * 8];
        for (int p0 = 0; p0 < vectorEnd; p0 += BlockK)
        {
            int p1 = Math.Min(vectorEnd, p0 + BlockK);
            for (int j = j0; j < j1; j++)
            {
                byte* wj = w + (long)j * k * elem;
                // The tile visits its 16 rows of W a block at a time, which the hardware prefetcher follows poorly:
                // fetch this row's next block into L1 now, 16 rows' worth of work ahead.
                if (Sse.IsSupported)
                    for (long q = (long)p1 * elem, qEnd = (long)Math.Min(vectorEnd, p1 + BlockK) * elem; q < qEnd; q += 64) Sse.Prefetch0(wj + q);
                Sweep<TRows>(path, bf16, x, wj, k, p0, p1, acc + (j - j0) * AccPerRow, p0 == 0, p1 == vectorEnd, sums + (j - j0) * 8);
            }
        }
        for (int j = j0; j < j1; j++) Tail<TRows>(x, w + (long)j * k * elem, bf16, k, vectorEnd, sums + (j - j0) * 8, y + j, ldy);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Sweep<TRows>(DotPath path, bool bf16, float* x, byte* w, int k, int p0, int p1, Vector512<float>* acc, bool first, bool last, float* sums)
        where TRows : struct, IRows
    {
        switch (path, bf16)
        {
            case (DotPath.V512, true): SpanBf16<TRows, Vector512<float>>(x, (ushort*)w, k, p0, p1, acc, first, last, sums); break;
            case (DotPath.V512, false): SpanF32<TRows, Vector512<float>>(x, (float*)w, k, p0, p1, acc, first, last, sums); break;
            case (DotPath.V256, true): SpanBf16<TRows, Vector256<float>>(x, (ushort*)w, k, p0, p1, (Vector256<float>*)acc, first, last, sums); break;
            default: SpanF32<TRows, Vector256<float>>(x, (float*)w, k, p0, p1, (Vector256<float>*)acc, first, last, sums); break;
        }
    }

    /// <summary>Each pair's sum: the vector part's reduction, then the scalar tail [vectorEnd, k).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tail<TRows>(float* x, byte* w, bool bf16, int k, int vectorEnd, float* sums, float* y, int ldy) where TRows : struct, IRows
    {
        for (int r = 0; r < TRows.Count; r++)
        {
            float s = sums[r];
            for (int p = vectorEnd; p < k; p++)
                s = MathF.FusedMultiplyAdd(x[(long)r * k + p], bf16 ? IO.BFloat16.ToFloat(((ushort*)w)[p]) : ((float*)w)[p], s);
            y[(long)r * ldy] = s;
        }
    }

    // The vector sweeps of [p0, p1) for one W row, for TVec = Vector256<float> or Vector512<float>: acc[2r] (and acc[2r + 1]
    // for bf16) hold row r's accumulators between k blocks (zero at the first, loaded otherwise), so consecutive blocks
    // continue the same sums; the last block reduces them into sums[r]. One FMA per X row per vector of W.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SpanF32<TRows, TVec>(float* x, float* w, int k, int p0, int p1, TVec* acc, bool first, bool last, float* sums)
        where TRows : struct, IRows where TVec : unmanaged => SweepF32<TRows, TVec>(x, w, k, p0, p1, acc, first, last, sums);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SweepF32<TRows, TVec>(float* x, float* w, int k, int p0, int p1, TVec* acc, bool first, bool last, float* sums)
        where TRows : struct, IRows where TVec : unmanaged
    {
        int rows = TRows.Count, n = sizeof(TVec) / sizeof(float);
        // Row pointers hoisted: written as x + r * k + p in the loop, each load paid a 32-bit multiply and a sign extension.
        float* x1 = x + (nint)k, x2 = x1 + k, x3 = x2 + k, x4 = x3 + k, x5 = x4 + k, x6 = x5 + k, x7 = x6 + k;
        TVec a0 = first ? default : acc[0], a1 = rows > 1 && !first ? acc[2] : default, a2 = rows > 2 && !first ? acc[4] : default, a3 = rows > 3 && !first ? acc[6] : default,
            a4 = rows > 4 && !first ? acc[8] : default, a5 = rows > 5 && !first ? acc[10] : default, a6 = rows > 6 && !first ? acc[12] : default, a7 = rows > 7 && !first ? acc[14] : default;
        for (int p = p0; p < p1; p += n)
        {
            if (rows == 1 && typeof(TVec) == typeof(Vector512<float>)) Sse.Prefetch0(w + p + PrefetchAhead / sizeof(float));
            var wv = Load<TVec>(w + p);
            a0 = Fma(Load<TVec>(x + p), wv, a0);
            if (rows > 1) a1 = Fma(Load<TVec>(x1 + p), wv, a1);
            if (rows > 2) a2 = Fma(Load<TVec>(x2 + p), wv, a2);
            if (rows > 3) a3 = Fma(Load<TVec>(x3 + p), wv, a3);
            if (rows > 4) a4 = Fma(Load<TVec>(x4 + p), wv, a4);
            if (rows > 5) a5 = Fma(Load<TVec>(x5 + p), wv, a5);
            if (rows > 6) a6 = Fma(Load<TVec>(x6 + p), wv, a6);
            if (rows > 7) a7 = Fma(Load<TVec>(x7 + p), wv, a7);
        }
        if (last)
        {
            sums[0] = Sum(a0); if (rows > 1) sums[1] = Sum(a1); if (rows > 2) sums[2] = Sum(a2); if (rows > 3) sums[3] = Sum(a3);
            if (rows > 4) sums[4] = Sum(a4); if (rows > 5) sums[5] = Sum(a5); if (rows > 6) sums[6] = Sum(a6); if (rows > 7) sums[7] = Sum(a7);
            return;
        }
        acc[0] = a0; if (rows > 1) acc[2] = a1; if (rows > 2) acc[4] = a2; if (rows > 3) acc[6] = a3;
        if (rows > 4) acc[8] = a4; if (rows > 5) acc[10] = a5; if (rows > 6) acc[12] = a6; if (rows > 7) acc[14] = a7;
    }

    // Two f32 W rows at once, [0, vectorEnd) whole: each load of X feeds both rows' FMAs, halving the loads of X per
    // FMA, which bound the one-row sweep with several rows of X. 8 rows of X, one thread, AMD EPYC Zen 5, µs: W 192 x 192
    // 7.4-7.5 -> 5.1-5.2, W 4160 x 192 (the tiny models' head) 160-162 -> 117-118; AVX2 (two passes of 4 rows)
    // 230 -> 150-152. Each pair's accumulator sees the same FMAs in the same order as in SweepF32, so the sums are
    // bitwise those of the one-row sweep. sums[r] for row j, sums[8 + r] for row j + 1.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SweepF32Pair<TRows, TVec>(float* x, float* w, int k, int vectorEnd, float* sums)
        where TRows : struct, IRows where TVec : unmanaged
    {
        int rows = TRows.Count, n = sizeof(TVec) / sizeof(float);
        float* x1 = x + (nint)k, x2 = x1 + k, x3 = x2 + k, x4 = x3 + k, x5 = x4 + k, x6 = x5 + k, x7 = x6 + k, v = w + (nint)k;
        TVec a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        TVec c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int p = 0; p < vectorEnd; p += n)
        {
            var w0 = Load<TVec>(w + p); var w1 = Load<TVec>(v + p);
            var xv = Load<TVec>(x + p); a0 = Fma(xv, w0, a0); c0 = Fma(xv, w1, c0);
            if (rows > 1) { xv = Load<TVec>(x1 + p); a1 = Fma(xv, w0, a1); c1 = Fma(xv, w1, c1); }
            if (rows > 2) { xv = Load<TVec>(x2 + p); a2 = Fma(xv, w0, a2); c2 = Fma(xv, w1, c2); }
            if (rows > 3) { xv = Load<TVec>(x3 + p); a3 = Fma(xv, w0, a3); c3 = Fma(xv, w1, c3); }
            if (rows > 4) { xv = Load<TVec>(x4 + p); a4 = Fma(xv, w0, a4); c4 = Fma(xv, w1, c4); }
            if (rows > 5) { xv = Load<TVec>(x5 + p); a5 = Fma(xv, w0, a5); c5 = Fma(xv, w1, c5); }
            if (rows > 6) { xv = Load<TVec>(x6 + p); a6 = Fma(xv, w0, a6); c6 = Fma(xv, w1, c6); }
            if (rows > 7) { xv = Load<TVec>(x7 + p); a7 = Fma(xv, w0, a7); c7 = Fma(xv, w1, c7); }
        }
        if (rows > 2 && typeof(TVec) == typeof(Vector512<float>))
        {
            // Both rows' sums at once, bitwise those of Sum (absent rows of X add zero vectors).
            HorizontalSum.Sum16(V(a0), V(a1), V(a2), V(a3), V(a4), V(a5), V(a6), V(a7), V(c0), V(c1), V(c2), V(c3), V(c4), V(c5), V(c6), V(c7)).Store(sums);
            return;
        }
        sums[0] = Sum(a0); sums[8] = Sum(c0);
        if (rows > 1) { sums[1] = Sum(a1); sums[9] = Sum(c1); }
        if (rows > 2) { sums[2] = Sum(a2); sums[10] = Sum(c2); }
        if (rows > 3) { sums[3] = Sum(a3); sums[11] = Sum(c3); }
        if (rows > 4) { sums[4] = Sum(a4); sums[12] = Sum(c4); }
        if (rows > 5) { sums[5] = Sum(a5); sums[13] = Sum(c5); }
        if (rows > 6) { sums[6] = Sum(a6); sums[14] = Sum(c6); }
        if (rows > 7) { sums[7] = Sum(a7); sums[15] = Sum(c7); }
    }

    // bf16: two accumulator sets (the low and high halves of each 2n weights, widened by a shift) to hide FMA latency.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static void SpanBf16<TRows, TVec>(float* x, ushort* w, int k, int p0, int p1, TVec* acc, bool first, bool last, float* sums)
        where TRows : struct, IRows where TVec : unmanaged => SweepBf16<TRows, TVec>(x, w, k, p0, p1, acc, first, last, sums);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SweepBf16<TRows, TVec>(float* x, ushort* w, int k, int p0, int p1, TVec* acc, bool first, bool last, float* sums)
        where TRows : struct, IRows where TVec : unmanaged
    {
        int rows = TRows.Count, n = sizeof(TVec) / sizeof(float);
        // Row pointers hoisted: written as x + r * k + p in the loop, each load paid a 32-bit multiply and a sign extension.
        float* x1 = x + (nint)k, x2 = x1 + k, x3 = x2 + k, x4 = x3 + k, x5 = x4 + k, x6 = x5 + k, x7 = x6 + k;
        TVec a0 = first ? default : acc[0], a1 = rows > 1 && !first ? acc[2] : default, a2 = rows > 2 && !first ? acc[4] : default, a3 = rows > 3 && !first ? acc[6] : default,
            a4 = rows > 4 && !first ? acc[8] : default, a5 = rows > 5 && !first ? acc[10] : default, a6 = rows > 6 && !first ? acc[12] : default, a7 = rows > 7 && !first ? acc[14] : default;
        TVec b0 = first ? default : acc[1], b1 = rows > 1 && !first ? acc[3] : default, b2 = rows > 2 && !first ? acc[5] : default, b3 = rows > 3 && !first ? acc[7] : default,
            b4 = rows > 4 && !first ? acc[9] : default, b5 = rows > 5 && !first ? acc[11] : default, b6 = rows > 6 && !first ? acc[13] : default, b7 = rows > 7 && !first ? acc[15] : default;
        for (int p = p0; p < p1; p += 2 * n)
        {
            if (rows == 1 && typeof(TVec) == typeof(Vector512<float>)) Sse.Prefetch0(w + p + PrefetchAhead / sizeof(ushort));
            var (wl, wh) = WidenBf16<TVec>(w + p);
            a0 = Fma(Load<TVec>(x + p), wl, a0); b0 = Fma(Load<TVec>(x + p + n), wh, b0);
            if (rows > 1) { a1 = Fma(Load<TVec>(x1 + p), wl, a1); b1 = Fma(Load<TVec>(x1 + p + n), wh, b1); }
            if (rows > 2) { a2 = Fma(Load<TVec>(x2 + p), wl, a2); b2 = Fma(Load<TVec>(x2 + p + n), wh, b2); }
            if (rows > 3) { a3 = Fma(Load<TVec>(x3 + p), wl, a3); b3 = Fma(Load<TVec>(x3 + p + n), wh, b3); }
            if (rows > 4) { a4 = Fma(Load<TVec>(x4 + p), wl, a4); b4 = Fma(Load<TVec>(x4 + p + n), wh, b4); }
            if (rows > 5) { a5 = Fma(Load<TVec>(x5 + p), wl, a5); b5 = Fma(Load<TVec>(x5 + p + n), wh, b5); }
            if (rows > 6) { a6 = Fma(Load<TVec>(x6 + p), wl, a6); b6 = Fma(Load<TVec>(x6 + p + n), wh, b6); }
            if (rows > 7) { a7 = Fma(Load<TVec>(x7 + p), wl, a7); b7 = Fma(Load<TVec>(x7 + p + n), wh, b7); }
        }
        if (last)
        {
            sums[0] = Sum(Add(a0, b0)); if (rows > 1) sums[1] = Sum(Add(a1, b1)); if (rows > 2) sums[2] = Sum(Add(a2, b2)); if (rows > 3) sums[3] = Sum(Add(a3, b3));
            if (rows > 4) sums[4] = Sum(Add(a4, b4)); if (rows > 5) sums[5] = Sum(Add(a5, b5)); if (rows > 6) sums[6] = Sum(Add(a6, b6)); if (rows > 7) sums[7] = Sum(Add(a7, b7));
            return;
        }
        acc[0] = a0; acc[1] = b0;
        if (rows > 1) { acc[2] = a1; acc[3] = b1; }
        if (rows > 2) { acc[4] = a2; acc[5] = b2; }
        if (rows > 3) { acc[6] = a3; acc[7] = b3; }
        if (rows > 4) { acc[8] = a4; acc[9] = b4; }
        if (rows > 5) { acc[10] = a5; acc[11] = b5; }
        if (rows > 6) { acc[12] = a6; acc[13] = b6; }
        if (rows > 7) { acc[14] = a7; acc[15] = b7; }
    }

    // The few vector operations the sweeps need, for Vector256<float> and Vector512<float> (the JIT keeps one branch).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Load<TVec>(float* p) where TVec : unmanaged => Unsafe.ReadUnaligned<TVec>(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Fma<TVec>(TVec x, TVec w, TVec a) where TVec : unmanaged =>
        typeof(TVec) == typeof(Vector512<float>)
            ? Unsafe.BitCast<Vector512<float>, TVec>(Vector512.FusedMultiplyAdd(Unsafe.BitCast<TVec, Vector512<float>>(x), Unsafe.BitCast<TVec, Vector512<float>>(w), Unsafe.BitCast<TVec, Vector512<float>>(a)))
            : Unsafe.BitCast<Vector256<float>, TVec>(Vector256.FusedMultiplyAdd(Unsafe.BitCast<TVec, Vector256<float>>(x), Unsafe.BitCast<TVec, Vector256<float>>(w), Unsafe.BitCast<TVec, Vector256<float>>(a)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec Add<TVec>(TVec a, TVec b) where TVec : unmanaged =>
        typeof(TVec) == typeof(Vector512<float>)
            ? Unsafe.BitCast<Vector512<float>, TVec>(Unsafe.BitCast<TVec, Vector512<float>>(a) + Unsafe.BitCast<TVec, Vector512<float>>(b))
            : Unsafe.BitCast<Vector256<float>, TVec>(Unsafe.BitCast<TVec, Vector256<float>>(a) + Unsafe.BitCast<TVec, Vector256<float>>(b));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> V<TVec>(TVec v) where TVec : unmanaged => Unsafe.BitCast<TVec, Vector512<float>>(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum<TVec>(TVec v) where TVec : unmanaged =>
        typeof(TVec) == typeof(Vector512<float>) ? HorizontalSum.Sum(Unsafe.BitCast<TVec, Vector512<float>>(v)) : HorizontalSum.Sum(Unsafe.BitCast<TVec, Vector256<float>>(v));

    /// <summary>2n bf16 weights at p as two vectors of f32 (bf16 is the high half of an f32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (TVec Lo, TVec Hi) WidenBf16<TVec>(ushort* p) where TVec : unmanaged
    {
        if (typeof(TVec) == typeof(Vector512<float>))
        {
            var (lo, hi) = Vector512.Widen(Vector512.Load(p));
            return (Unsafe.BitCast<Vector512<float>, TVec>(Vector512.ShiftLeft(lo, 16).AsSingle()), Unsafe.BitCast<Vector512<float>, TVec>(Vector512.ShiftLeft(hi, 16).AsSingle()));
        }
        var (lo2, hi2) = Vector256.Widen(Vector256.Load(p));
        return (Unsafe.BitCast<Vector256<float>, TVec>(Vector256.ShiftLeft(lo2, 16).AsSingle()), Unsafe.BitCast<Vector256<float>, TVec>(Vector256.ShiftLeft(hi2, 16).AsSingle()));
    }
}
