using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// The CPU kernel. For batches of 3..8, and for batches 1–2 on Vector128 (SSE/NEON) and scalar, work per codeword
/// follows its nonzero trits. Each codeword is one 64-bit
/// <see cref="NonzeroTable"/> lookup whose <see cref="NonzeroTable.Slots"/> slots are the workspace offsets of its
/// nonzero weights; each slot is one load + one add into a [Σx over min positions | Σx over max positions]
/// accumulator (one per slot, so the adds do not chain), and the row's two sums are scaled once at its end.
/// For a batch of B ≤ 8 vectors (rounded up to 1, 2, 4 or 8) a workspace unit holds B floats, so a slot adds
/// 2B floats at once: the batch rides along for free in the vector width. Paths by <see cref="KernelIsa"/>:
/// scalar (two floats, one batch vector at a time), Vector128 (SSE/NEON), AVX2 (256-bit for batch ≥ 4) and
/// AVX-512 (512-bit for batch 8); batch 2 is 128-bit on every SIMD path. Batches 1 and 2 on AVX2 and AVX-512 run
/// <see cref="WindowRows"/> (dequantize whole 8/16-lane windows by permutes), which measured faster there
/// (docs/KERNELS.md), and so does every vector of a batch inside <see cref="BatchInvariance.Enter"/>, so that each
/// gets its batch-1 result bitwise. Reentrant: the operands of a call travel in a stack struct and its workspace is rented per call, so one
/// instance serves several threads at once. The position is clamped (a never-taken branch) so a corrupt row
/// stays inside the zero-padded workspace; a row not decoding to cols (+ &lt; 28 padding) weights throws
/// <see cref="QmoeException"/>. A coded 2-bit matrix (<see cref="CompressedMatrix.GridScales"/>; the instance built on its
/// four-level table) runs the window loops at every batch on AVX2 / AVX-512 (the slots hold two sums, not three) and
/// <see cref="FourLevelRows"/> below.
/// </summary>
public sealed unsafe class SimdCompressedMatVec : ICompressedMatVec
{
    /// <summary><see cref="NonzeroTable.EmptyEntry"/> at a fixed address (shared, read-only).</summary>
    private static readonly ulong* EmptyEntry = NewEmptyEntry();

    private static ulong* NewEmptyEntry()
    {
        var e = (ulong*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(64, 64);
        for (int i = 0; i < 8; i++) e[i] = NonzeroTable.EmptyEntry;
        return e;
    }

    private readonly NonzeroTable? _table;
    private readonly DecodeTable _windowTable;
    private readonly RowParallel _parallel;

    /// <summary>The instruction-set path this instance runs.</summary>
    public KernelIsa Isa { get; }

    /// <param name="table">the model's decode table</param>
    /// <param name="parallel">the worker threads row blocks run on</param>
    /// <param name="isa">the instruction-set path to force; null: the best this CPU runs</param>
    /// <param name="slots">nonzero slots per codeword, 4 or 5 (<see cref="NonzeroTable.Slots"/>; <see cref="NonzeroTable.PreferredSlots"/> picks one for a model)</param>
    /// <param name="positionWindows">let matrices of at most <see cref="PositionRows.MaxCols"/> columns take <see cref="PositionRows"/>
    /// on AVX-512 with VBMI, at every batch (false: the window loop and the slots as elsewhere; for tests)</param>
    public SimdCompressedMatVec(DecodeTable table, RowParallel parallel, KernelIsa? isa = null, int slots = 4, bool positionWindows = true)
    {
        _windowTable = table;
        _table = table.Levels == 3 ? NonzeroTable.From(table, slots) : null; // the slots hold [min | max] sums: ternary only
        _parallel = parallel;
        Isa = KernelIsas.OrBest(isa);
        _positionWindows = positionWindows;
    }

    private readonly bool _positionWindows;

    /// <summary>Whether path <paramref name="isa"/> runs <see cref="PositionRows"/> (at every batch) on a matrix of
    /// <paramref name="cols"/> columns: AVX-512 with VBMI and short rows.</summary>
    internal static bool UsesPositions(KernelIsa isa, int cols) => isa == KernelIsa.Avx512 && PositionRows.IsSupported && cols <= PositionRows.MaxCols;

    /// <summary>The row loop a batch-1 call runs on path <paramref name="isa"/> for <paramref name="cols"/> columns, by name (for benchmarks).</summary>
    internal static string RowLoop(KernelIsa isa, int cols) =>
        UsesPositions(isa, cols) ? "position windows" : isa >= KernelIsa.Avx2 ? "windows" : "nonzero slots";

    /// <summary>Whether a call with this batch runs <see cref="WindowRows"/>: on AVX2 / AVX-512, batches of 1 and 2, and every
    /// batch inside <see cref="BatchInvariance.Enter"/> (each vector then gets exactly its batch-1 sum).</summary>
    private bool UsesWindows(int batch) => Isa >= KernelIsa.Avx2 && (batch <= 2 || BatchInvariance.IsOn);

    /// <summary>Batch vectors per workspace unit: the batch rounded up to 1, 2, 4 or 8 (scalar: 1, one copy per vector).</summary>
    private static int Lanes(KernelIsa isa, int batch) => isa == KernelIsa.Scalar ? 1 : (int)BitOperations.RoundUpToPowerOf2((uint)batch);

    /// <summary>Weight positions a workspace copy spans: cols, the clamp slack (28) and two codewords' reach past it (one clamp per two).</summary>
    private static int Positions(int cols) => cols + 3 * DecodeTable.MaxWeights + 4;

    public void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        if (w.LevelCount != _windowTable.Levels) throw CompressedMatrix.LevelMismatch(_windowTable.Levels, w.LevelCount);
        bool fourLevels = _table == null;
        // Short rows on AVX-512 VBMI: PositionRows for every batch (faster than the slots at 3-8 vectors too, docs/KERNELS.md).
        bool positions = _positionWindows && UsesPositions(Isa, w.Cols);
        bool windows = positions || UsesWindows(batch) || fourLevels; // four levels below AVX2: FourLevelRows, on window copies
        int lanes = Lanes(Isa, batch), copies = windows || Isa == KernelIsa.Scalar ? batch : 1;
        // Window copies: x then Padding zeros, each copy 64-byte aligned (16 floats of slack for the first one's start).
        int copyFloats = windows ? (w.Cols + WindowRows.Padding + 15) / 16 * 16 : 3 * lanes * Positions(w.Cols) + 16;
        var ws = ArrayPool<float>.Shared.Rent(copies * copyFloats + 16);
        try
        {
            if (!windows) Fill(ws, x, w.Cols, batch, lanes, copies, copyFloats);
            fixed (ulong* table = _table?.Entries) fixed (byte* overflow = _table?.Overflow) fixed (int* overflowStart = _table?.OverflowStart)
            fixed (ulong* windowTable = _windowTable.Entries)
            fixed (ushort* codes = w.Codes) fixed (int* offsets = w.RowOffsets) fixed (ushort* scales = w.Scales) fixed (float* gridScales = w.GridScales) fixed (byte* gridZeros = w.GridZeros)
            fixed (float* wsp = ws) fixed (float* yp = y)
            {
                float* copy0 = wsp;
                if (windows)
                {
                    copy0 = (float*)(((nint)wsp + 63) & ~(nint)63);
                    for (int b = 0; b < batch; b++)
                    {
                        var dst = new Span<float>(copy0 + (long)b * copyFloats, copyFloats);
                        x.Slice(b * w.Cols, w.Cols).CopyTo(dst);
                        dst[w.Cols..].Clear();
                    }
                }
                var job = new Job
                {
                    Table = windows ? windowTable : table, Overflow = overflow, OverflowStart = overflowStart, Codes = codes, RowOffsets = offsets,
                    Scales = scales, GridScales = gridScales, GridZeros = gridZeros, Workspace = copy0, CopyFloats = copyFloats, Y = yp, Empty = windows ? WindowRows.ZeroEntry : EmptyEntry, Steps = FourLevelRows.Steps,
                    Rows = w.Rows, Cols = w.Cols, Batch = batch, Lanes = lanes, Isa = Isa, Windows = windows, FiveSlots = _table?.Slots == 5,
                    Positions = positions,
                };
                _parallel.For(w.Rows, _parallel.BlockRows(w.Rows, w.Cols), ref job);
            }
        }
        finally { ArrayPool<float>.Shared.Return(ws); }
    }

    /// <summary>Workspace: per copy and weight position j the units [0, x_j, 0] (a unit = lanes floats, vector b in lane b), zero elsewhere.</summary>
    private static void Fill(float[] ws, ReadOnlySpan<float> x, int cols, int batch, int lanes, int copies, int copyFloats)
    {
        ws.AsSpan(0, copies * copyFloats).Clear();
        for (int c = 0; c < copies; c++)
        {
            var dst = ws.AsSpan(c * copyFloats, copyFloats);
            for (int b = c; b < (copies == 1 ? batch : c + 1); b++)
            {
                var xb = x.Slice(b * cols, cols);
                int lane = b - c;
                for (int j = 0; j < cols; j++) dst[(3 * j + 1) * lanes + lane] = xb[j];
            }
        }
    }

    /// <summary>One call's operands (a stack local shared with the workers for the call's duration).</summary>
    private struct Job : IRowBlockBody
    {
        public ulong* Table; public byte* Overflow; public int* OverflowStart;
        public ushort* Codes; public int* RowOffsets; public ushort* Scales;
        /// <summary>A coded 2-bit matrix's grid per row (f32 scale, u8 zero point), or null (ternary: <see cref="Scales"/>).</summary>
        public float* GridScales; public byte* GridZeros;
        public float* Workspace; public int CopyFloats; public float* Y;
        /// <summary>The entry a row's last step reads past its end: <see cref="EmptyEntry"/>, or <see cref="WindowRows.ZeroEntry"/>
        /// with <see cref="Windows"/>. Passed in: a static read in the FullOpts row loops compiled to a class-init helper call,
        /// around which the JIT kept the accumulator in a stack slot (a store and a reload every step).</summary>
        public ulong* Empty;
        /// <summary><see cref="FourLevelRows.Steps"/> (passed in for the same reason).</summary>
        public float* Steps;
        public int Rows, Cols, Batch, Lanes;
        public KernelIsa Isa;
        /// <summary>Through <see cref="WindowRows"/> (batches 1-2, or batch-invariant) or <see cref="PositionRows"/>: Table is the <see cref="DecodeTable"/>,
        /// Workspace one zero-padded copy of x per vector, <see cref="CopyFloats"/> apart.</summary>
        public bool Windows;
        /// <summary>The nonzero table holds 5 slots per entry (else 4).</summary>
        public bool FiveSlots;
        /// <summary>With <see cref="Windows"/>: through <see cref="PositionRows"/> instead (AVX-512 VBMI, short rows).</summary>
        public bool Positions;

        public void Run(int start, int end)
        {
            if (GridScales != null && Isa < KernelIsa.Avx2) RunFourLevelRows(start, end);
            else if (Windows) RunWindows(start, end);
            else if (FiveSlots) RunSlots<Slots5>(start, end);
            else RunSlots<Slots4>(start, end);
        }

        private readonly void RunSlots<TSlots>(int start, int end) where TSlots : struct, ISlotCount
        {
            switch (Isa, Lanes)
            {
                case (KernelIsa.Scalar, _): RunRows<float, Lanes1Scalar, TSlots>(start, end); break;
                case (_, 1): RunRows<Vector128<float>, Lanes1, TSlots>(start, end); break;
                case (_, 2): RunRows<Vector128<float>, Lanes2, TSlots>(start, end); break;
                case (KernelIsa.Vector128, 4): RunRows<Vector128<float>, Lanes4x2, TSlots>(start, end); break;
                case (KernelIsa.Vector128, _): RunRows<Vector128<float>, Lanes8x4, TSlots>(start, end); break;
                case (_, 4): RunRows<Vector256<float>, Lanes4x1, TSlots>(start, end); break;
                case (KernelIsa.Avx2, _): RunRows<Vector256<float>, Lanes8x2, TSlots>(start, end); break;
                default: RunRows<Vector512<float>, Lanes8x1, TSlots>(start, end); break;
            }
        }

        /// <summary>The window loops over rows [start, end) for the batch's vectors, up to eight per decode with
        /// <see cref="PositionRows"/>, four with <see cref="WindowRows"/> on AVX-512 and two on AVX2 (each loop is its own
        /// fully optimized method).</summary>
        private readonly void RunWindows(int start, int end)
        {
            int group = Positions ? 8 : Isa == KernelIsa.Avx512 ? 4 : 2;
            var levels = new RowLevels(Scales, GridScales, GridZeros);
            for (int b = 0; b < Batch; b += group)
            {
                float* x = Workspace + (long)b * CopyFloats, y = Y + (long)b * Rows;
                if (Positions)
                {
                    PositionRows.Rows512(Math.Min(group, Batch - b), Table, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows);
                    continue;
                }
                switch (Isa, Math.Min(group, Batch - b))
                {
                    case (KernelIsa.Avx512, 1): WindowRows.Rows512<OneVector>(Table, Empty, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows); break;
                    case (KernelIsa.Avx512, 2): WindowRows.Rows512<TwoVectors>(Table, Empty, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows); break;
                    case (KernelIsa.Avx512, 3): WindowRows.Rows512<ThreeVectors>(Table, Empty, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows); break;
                    case (KernelIsa.Avx512, _): WindowRows.Rows512<FourVectors>(Table, Empty, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows); break;
                    case (_, 1): WindowRows.Rows256<OneVector>(Table, Empty, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows); break;
                    default: WindowRows.Rows256<TwoVectors>(Table, Empty, Codes, RowOffsets, levels, start, end, Cols, x, CopyFloats, y, Rows); break;
                }
            }
        }

        /// <summary>Coded 2-bit rows below AVX2 (<see cref="FourLevelRows"/>), each vector of the batch on its own.</summary>
        private readonly void RunFourLevelRows(int start, int end)
        {
            var rowLevels = new RowLevels(Scales, GridScales, GridZeros);
            for (int b = 0; b < Batch; b++)
            {
                float* x = Workspace + (long)b * CopyFloats, y = Y + (long)b * Rows;
                if (Isa == KernelIsa.Vector128) FourLevelRows.Rows128(Table, Steps, Codes, RowOffsets, GridScales, GridZeros, start, end, Cols, x, y);
                else FourLevelRows.RowsScalar(Table, Codes, RowOffsets, rowLevels, start, end, Cols, x, y);
            }
        }

        // Every AggressiveOptimization kernel is also NoInlining: compiled once, fully optimized, as its own method.
        // Otherwise a tier-1 caller (Job.Run, CompressedWeight.Multiply) inlined it and ran out of inlining budget for its
        // own callees: WindowRows' row function was then called, and ran as tier-0 code (perf of `generate`, docs/KERNELS.md).
        [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
        private readonly void RunRows<TVec, TShape, TSlots>(int start, int end)
            where TVec : unmanaged where TShape : struct, IRowShape where TSlots : struct, ISlotCount
        {
            float* sums = stackalloc float[2 * ICompressedMatVec.MaxBatch];
            int copies = Isa == KernelIsa.Scalar ? Batch : 1;
            for (int r = start; r < end; r++)
            {
                ushort* codes = Codes + RowOffsets[r];
                int n = RowOffsets[r + 1] - RowOffsets[r];
                float min = BFloat16.ToFloat(Scales[2 * r]), max = BFloat16.ToFloat(Scales[2 * r + 1]);
                for (int c = 0; c < copies; c++)
                {
                    byte* ws = (byte*)(Workspace + c * CopyFloats);
                    long weights = Row<TVec, TShape, TSlots>(Table, Empty, Overflow, OverflowStart, codes, n, ws, Cols, sums);
                    if (weights < Cols || weights >= Cols + DecodeTable.MaxWeights) throw CompressedMatrix.RowLengthError(r, weights, Cols);
                    if (copies > 1) Y[c * Rows + r] = min * sums[0] + max * sums[1];
                    else
                        for (int b = 0; b < Batch; b++) Y[b * Rows + r] = min * sums[b] + max * sums[Lanes + b];
                }
            }
        }
    }

    /// <summary>
    /// Σx over the row's min and max positions into sums ([min | max], lanes each); returns the weights the row's
    /// codewords cover (clamped to cols + 28). The workspace pointer is the only loop-carried chain (one add).
    /// Inlined into the row loop, so per-row setup is not a call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Row<TVec, TShape, TSlots>(ulong* table, ulong* empty, byte* overflow, int* overflowStart, ushort* codes, int n, byte* ws, int cols, float* sums)
        where TVec : unmanaged where TShape : struct, IRowShape where TSlots : struct, ISlotCount
    {
        int sh = TShape.UnitShift, vectors = TShape.Vectors, size = sizeof(TVec);
        byte* limit = ws + ((nint)(3 * (cols + DecodeTable.MaxWeights)) << sh);
        TVec a0 = default, a1 = default, a2 = default, a3 = default; // the accumulator's vectors (as many as one slot spans)
        byte* p = ws;
        int i = 0, extra = 0; // extra: nonzero when a codeword of the row has overflow slots
        // Two codewords per step: the second's position is the first's plus its advance; one clamp per step (so the
        // workspace pads for one more codeword past the limit).
        for (; i + 2 <= n; i += 2)
        {
            byte* e0 = (byte*)(table + codes[i]), e1 = (byte*)(table + codes[i + 1]);
            byte* p1 = p + ((nint)e0[NonzeroTable.AdvanceByte] << sh);
            a0 = SlotVector.Add(a0, SlotVector.Add(SlotSum<TVec, TSlots>(e0, p, sh), SlotSum<TVec, TSlots>(e1, p1, sh)));
            if (vectors > 1) a1 = SlotVector.Add(a1, SlotVector.Add(SlotSum<TVec, TSlots>(e0, p + size, sh), SlotSum<TVec, TSlots>(e1, p1 + size, sh)));
            if (vectors > 2)
            {
                a2 = SlotVector.Add(a2, SlotVector.Add(SlotSum<TVec, TSlots>(e0, p + 2 * size, sh), SlotSum<TVec, TSlots>(e1, p1 + 2 * size, sh)));
                a3 = SlotVector.Add(a3, SlotVector.Add(SlotSum<TVec, TSlots>(e0, p + 3 * size, sh), SlotSum<TVec, TSlots>(e1, p1 + 3 * size, sh)));
            }
            extra |= e0[NonzeroTable.ExtraByte] | e1[NonzeroTable.ExtraByte];
            p = p1 + ((nint)e1[NonzeroTable.AdvanceByte] << sh);
            if (p > limit) p = limit;
        }
        {
            // The last codeword of an odd row, or for an even row the empty entry (reading codes[n - 1]): the same
            // work either way, so the row's parity (random from row to row) costs no branch miss.
            nint real = (nint)(i - n) >> 63; // all ones when i < n
            int code = codes[i - 1 + (int)(1 & real)];
            byte* e0 = (byte*)((nint)empty + (((nint)(table + code) - (nint)empty) & real));
            a0 = SlotVector.Add(a0, SlotSum<TVec, TSlots>(e0, p, sh));
            if (vectors > 1) a1 = SlotVector.Add(a1, SlotSum<TVec, TSlots>(e0, p + size, sh));
            if (vectors > 2)
            {
                a2 = SlotVector.Add(a2, SlotSum<TVec, TSlots>(e0, p + 2 * size, sh));
                a3 = SlotVector.Add(a3, SlotSum<TVec, TSlots>(e0, p + 3 * size, sh));
            }
            extra |= e0[NonzeroTable.ExtraByte];
            p += (nint)e0[NonzeroTable.AdvanceByte] << sh;
            if (p > limit) p = limit;
        }
        Unsafe.WriteUnaligned(sums, a0);
        if (vectors > 1) Unsafe.WriteUnaligned((byte*)sums + size, a1);
        if (vectors > 2) { Unsafe.WriteUnaligned((byte*)sums + 2 * size, a2); Unsafe.WriteUnaligned((byte*)sums + 3 * size, a3); }
        if (extra != 0) AddOverflow<TVec>(table, overflow, overflowStart, codes, n, ws, limit, sh, vectors, (byte*)sums);
        return ((p - ws) >> sh) / 3;
    }

    /// <summary>Σ of a codeword's four or five slots' vectors at position p: each address is formed and loaded at once (a tree
    /// of adds), so no slot pointer stays live; with all eight of a step's pointers formed first the JIT spilled them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TVec SlotSum<TVec, TSlots>(byte* e, byte* p, int sh) where TVec : unmanaged where TSlots : struct, ISlotCount
    {
        var s = SlotVector.Add(SlotVector.Add(SlotVector.Load<TVec>(p + ((nint)e[0] << sh)), SlotVector.Load<TVec>(p + ((nint)e[1] << sh))),
            SlotVector.Add(SlotVector.Load<TVec>(p + ((nint)e[2] << sh)), SlotVector.Load<TVec>(p + ((nint)e[3] << sh))));
        return TSlots.Five ? SlotVector.Add(s, SlotVector.Load<TVec>(p + ((nint)e[4] << sh))) : s;
    }

    /// <summary>
    /// Adds to the row's sums (the accumulator's <paramref name="vectors"/> vectors, stored) the units at the overflow
    /// slots of its codewords with more than <see cref="NonzeroTable.Slots"/> nonzeros, walking the row's positions
    /// again. A second walk, only for rows that need it, instead of a branch and a call in the main loop: with them
    /// there the JIT kept the slot pointers in stack slots (reloaded every step), and dictionaries fitted for ~75%
    /// zeros (the tiny models') send 13% of their codewords here.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // rare; no tier-0 phase
    private static void AddOverflow<TVec>(ulong* table, byte* overflow, int* overflowStart, ushort* codes, int n, byte* ws, byte* limit,
        int sh, int vectors, byte* sums) where TVec : unmanaged
    {
        byte* p = ws;
        for (int i = 0; i < n; i++)
        {
            byte* e = (byte*)(table + codes[i]);
            if (e[NonzeroTable.ExtraByte] != 0)
            {
                byte* slots = overflow + overflowStart[codes[i]];
                int count = e[NonzeroTable.ExtraByte];
                for (int v = 0; v < vectors; v++)
                {
                    byte* acc = sums + v * sizeof(TVec), pv = p + v * sizeof(TVec);
                    TVec a = SlotVector.Load<TVec>(acc);
                    for (int j = 0; j < count; j++) a = SlotVector.Add(a, SlotVector.Load<TVec>(pv + ((nint)slots[j] << sh)));
                    Unsafe.WriteUnaligned(acc, a);
                }
            }
            p += (nint)e[NonzeroTable.AdvanceByte] << sh;
            if (p > limit) p = limit;
        }
    }
}
