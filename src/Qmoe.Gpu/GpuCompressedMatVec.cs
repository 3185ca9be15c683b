using ILGPU;
using ILGPU.Runtime;

using Qmoe.Kernels;

namespace Qmoe.Gpu;

/// <summary>
/// The GPU kernel (ILGPU; CUDA backend on NVIDIA, also runs on ILGPU's CPU accelerator for tests), shaped as
/// in QMoE: one warp per row, <see cref="WarpsPerGroup"/> rows in flight per thread block, the input vector
/// staged in shared memory (zero-padded so codewords reaching past the row end read zeros), a warp-shuffle
/// reduction at the end of each row. Unlike QMoE's kernel (all lanes on one codeword, one weight each) every
/// lane decodes its own codeword: 32 codewords per warp step, their positions from a warp prefix sum of their
/// lengths, each lane then accumulating its 28 weights from the row's [0, min, max] levels. The 512 KB decode
/// table (<see cref="DecodeTable"/>) exceeds shared memory, so it is read through the cache from global memory
/// (QMoE's kernel does the same with its dictionary).
/// </summary>
public sealed class GpuCompressedMatVec : ICompressedMatVec, IDisposable
{
    public const int WarpsPerGroup = 4;
    /// <summary>Rows each warp takes in turn (more rows per block amortise staging x; fewer give more blocks).</summary>
    public const int RowsPerWarp = 1;

    private readonly Accelerator _accelerator;
    private readonly MemoryBuffer1D<ulong, Stride1D.Dense> _table;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<int>, ArrayView<ushort>, ArrayView<ulong>,
        ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int> _kernel;

    public GpuCompressedMatVec(Accelerator accelerator, DecodeTable table)
    {
        _accelerator = accelerator;
        _table = accelerator.Allocate1D(table.Entries);
        _kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<int>, ArrayView<ushort>, ArrayView<ulong>,
            ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(Kernel);
    }

    /// <summary>Shared floats per block: x plus room for the clamped position (cols + 28) and a codeword's 28 weights.</summary>
    public static int SharedFloats(int cols) => cols + 2 * DecodeTable.MaxWeights + 8;

    /// <summary>Copies the matrix to the device, multiplies, copies y back (the runtime would keep experts resident).</summary>
    public void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        if (w.LevelCount != 3) throw new ArgumentException("a coded 2-bit matrix runs on the CPU kernel (the GPU kernels decode ternary codes)");
        w.CheckOperands(x.Length, y.Length, batch);
        using var codes = _accelerator.Allocate1D<ushort>(Math.Max(1, w.Codes.Length));
        using var offsets = _accelerator.Allocate1D<int>(w.RowOffsets.Length);
        using var scales = _accelerator.Allocate1D<ushort>(w.Scales.Length);
        using var xs = _accelerator.Allocate1D<float>(x.Length);
        using var ys = _accelerator.Allocate1D<float>(y.Length);
        using var badRow = _accelerator.Allocate1D<int>(1);
        ArrayView<ushort> codesView = codes.View, scalesView = scales.View;
        ArrayView<int> offsetsView = offsets.View, badView = badRow.View;
        ArrayView<float> xView = xs.View, yView = ys.View;
        codesView.SubView(0, w.Codes.Length).CopyFromCPU(w.Codes);
        offsetsView.CopyFromCPU(w.RowOffsets);
        scalesView.CopyFromCPU(w.Scales);
        xView.CopyFromCPU(x);
        badRow.MemSetToZero();
        Launch(codesView, offsetsView, scalesView, xView, yView, badView, w.Rows, w.Cols, batch);
        _accelerator.Synchronize();
        yView.CopyToCPU(y);
        Span<int> bad = stackalloc int[1];
        badView.CopyToCPU(bad);
        if (bad[0] != 0) throw CompressedMatrix.RowLengthError(bad[0] - 1, -1, w.Cols);
    }

    /// <summary>Launches y[b] = W x[b] on device-resident operands (no synchronisation). badRow[0] becomes row + 1 of a malformed row.</summary>
    public void Launch(ArrayView<ushort> codes, ArrayView<int> rowOffsets, ArrayView<ushort> scales,
        ArrayView<float> x, ArrayView<float> y, ArrayView<int> badRow, int rows, int cols, int batch = 1)
    {
        int groupSize = WarpsPerGroup * _accelerator.WarpSize;
        int rowsPerGroup = RowsPerWarp * WarpsPerGroup;
        var config = new KernelConfig((rows + rowsPerGroup - 1) / rowsPerGroup, groupSize,
            SharedMemoryConfig.RequestDynamic<float>(SharedFloats(cols)));
        for (int b = 0; b < batch; b++)
            _kernel(config, codes, rowOffsets, scales, _table.View, x.SubView((long)b * cols, cols),
                y.SubView((long)b * rows, rows), badRow, rows, cols, rowsPerGroup);
    }

    /// <summary>
    /// One thread block: stage x, then each warp takes rows firstRow + warp, + warps, ... of its rowsPerGroup.
    /// table: <see cref="DecodeTable.Entries"/>; scales: bf16 [rows, 2].
    /// </summary>
    internal static void Kernel(ArrayView<ushort> codes, ArrayView<int> rowOffsets, ArrayView<ushort> scales,
        ArrayView<ulong> table, ArrayView<float> x, ArrayView<float> y, ArrayView<int> badRow, int rows, int cols, int rowsPerGroup)
    {
        var xs = SharedMemory.GetDynamic<float>();
        int padded = SharedFloats(cols);
        for (int i = Group.IdxX; i < padded; i += Group.DimX) xs[i] = i < cols ? x[i] : 0f;
        Group.Barrier();

        int lane = Warp.LaneIdx, warpSize = Warp.WarpSize;
        int warps = Group.DimX / warpSize;
        int firstRow = Grid.IdxX * rowsPerGroup;
        int lastRow = IntrinsicMath.Min(rows, firstRow + rowsPerGroup);
        int limit = cols + DecodeTable.MaxWeights;
        for (int row = firstRow + Warp.WarpIdx; row < lastRow; row += warps)
        {
            int begin = rowOffsets[row], end = rowOffsets[row + 1];
            float min = Interop.IntAsFloat((uint)scales[2 * row] << 16);
            float max = Interop.IntAsFloat((uint)scales[2 * row + 1] << 16);
            float acc = 0f;
            int rowPos = 0;
            for (int b = begin; b < end; b += warpSize)
            {
                ulong e = b + lane < end ? table[(int)codes[b + lane]] : 0UL;
                int length = (int)(e >> DecodeTable.LengthShift);
                int inclusive = length;
                for (int d = 1; d < warpSize; d <<= 1)
                {
                    int up = Warp.ShuffleUp(inclusive, d);
                    if (lane >= d) inclusive += up;
                }
                int pos = IntrinsicMath.Min(rowPos + inclusive - length, limit);
                for (int k = 0; k < DecodeTable.MaxWeights; k++)
                {
                    int t = (int)(e >> (2 * k)) & 3;
                    float level = t == 1 ? min : t == 2 ? max : 0f;
                    acc += level * xs[pos + k];
                }
                rowPos = IntrinsicMath.Min(rowPos + Warp.Shuffle(inclusive, warpSize - 1), limit);
            }
            for (int d = warpSize / 2; d > 0; d >>= 1) acc += Warp.ShuffleDown(acc, d);
            if (lane == 0)
            {
                y[row] = acc;
                if (rowPos < cols || rowPos >= limit) Atomic.Max(ref badRow[0], row + 1);
            }
        }
    }

    public void Dispose() => _table.Dispose();
}
