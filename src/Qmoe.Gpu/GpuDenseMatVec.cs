using ILGPU;
using ILGPU.Runtime;

using Qmoe.Kernels;

namespace Qmoe.Gpu;

/// <summary>
/// The GPU baseline for <see cref="GpuCompressedMatVec"/>: dense y = W x with W [rows, cols] bf16 row-major,
/// one warp per row (coalesced loads of consecutive weights), x in shared memory, warp-shuffle reduction.
/// </summary>
public sealed class GpuDenseMatVec
{
    private readonly Accelerator _accelerator;
    private readonly Action<KernelConfig, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int, int, int> _kernel;

    public GpuDenseMatVec(Accelerator accelerator)
    {
        _accelerator = accelerator;
        _kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<float>, ArrayView<float>, int, int, int>(Kernel);
    }

    /// <summary>Copies W and x to the device, multiplies, copies y back.</summary>
    public void Multiply(ReadOnlySpan<ushort> w, int rows, int cols, ReadOnlySpan<float> x, Span<float> y)
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols != w.Length || x.Length != cols || y.Length != rows)
            throw new ArgumentException($"shapes: W {w.Length} values for [{rows}, {cols}], x {x.Length}, y {y.Length}");
        using var wd = _accelerator.Allocate1D<ushort>(w.Length);
        using var xd = _accelerator.Allocate1D<float>(cols);
        using var yd = _accelerator.Allocate1D<float>(rows);
        ArrayView<ushort> wv = wd.View; ArrayView<float> xv = xd.View, yv = yd.View;
        wv.CopyFromCPU(w); xv.CopyFromCPU(x);
        Launch(wv, xv, yv, rows, cols);
        _accelerator.Synchronize();
        yv.CopyToCPU(y);
    }

    /// <summary>Launches y = W x on device-resident operands (no synchronisation).</summary>
    public void Launch(ArrayView<ushort> w, ArrayView<float> x, ArrayView<float> y, int rows, int cols)
    {
        int rowsPerGroup = GpuCompressedMatVec.RowsPerWarp * GpuCompressedMatVec.WarpsPerGroup;
        var config = new KernelConfig((rows + rowsPerGroup - 1) / rowsPerGroup, GpuCompressedMatVec.WarpsPerGroup * _accelerator.WarpSize,
            SharedMemoryConfig.RequestDynamic<float>(cols));
        _kernel(config, w, x, y, rows, cols, rowsPerGroup);
    }

    internal static void Kernel(ArrayView<ushort> w, ArrayView<float> x, ArrayView<float> y, int rows, int cols, int rowsPerGroup)
    {
        var xs = SharedMemory.GetDynamic<float>();
        for (int i = Group.IdxX; i < cols; i += Group.DimX) xs[i] = x[i];
        Group.Barrier();
        int lane = Warp.LaneIdx, warpSize = Warp.WarpSize;
        int warps = Group.DimX / warpSize;
        int firstRow = Grid.IdxX * rowsPerGroup;
        int lastRow = IntrinsicMath.Min(rows, firstRow + rowsPerGroup);
        for (int row = firstRow + Warp.WarpIdx; row < lastRow; row += warps)
        {
            long start = (long)row * cols;
            float acc = 0f;
            for (int j = lane; j < cols; j += warpSize)
                acc += Interop.IntAsFloat((uint)w[start + j] << 16) * xs[j];
            for (int d = warpSize / 2; d > 0; d >>= 1) acc += Warp.ShuffleDown(acc, d);
            if (lane == 0) y[row] = acc;
        }
    }
}
