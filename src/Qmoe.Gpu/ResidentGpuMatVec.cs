using ILGPU;
using ILGPU.Runtime;
using Qmoe.Kernels;

namespace Qmoe.Gpu;

/// <summary>
/// <see cref="GpuCompressedMatVec"/> for a loaded model: each expert matrix is copied to the device on first use
/// and stays there (the codes are ~0.8 bits per weight, so a whole model fits), keyed by the address of its codes.
/// Only for matrices whose memory never moves (a memory-mapped model file), which is how
/// <see cref="Runtime.CompressedExperts"/> hands them out. Calls are serialised (one device stream).
/// </summary>
public sealed class ResidentGpuMatVec : ICompressedMatVec, IDisposable
{
    private sealed record Resident(MemoryBuffer1D<ushort, Stride1D.Dense> Codes, MemoryBuffer1D<int, Stride1D.Dense> RowOffsets,
        MemoryBuffer1D<ushort, Stride1D.Dense> Scales);

    private readonly Accelerator _accelerator;
    private readonly GpuCompressedMatVec _kernel;
    private readonly IDisposable? _owner;
    private readonly Dictionary<(nint Codes, int Length, int Rows, int Cols), Resident> _resident = new();
    private readonly Lock _lock = new();
    private MemoryBuffer1D<float, Stride1D.Dense>? _x, _y;
    private readonly MemoryBuffer1D<int, Stride1D.Dense> _badRow;

    /// <param name="accelerator">the device the codes are copied to and the kernel runs on</param>
    /// <param name="table">the model's decode table</param>
    /// <param name="owner">disposed with this instance (e.g. the <see cref="CudaDevice"/> the accelerator belongs to)</param>
    public ResidentGpuMatVec(Accelerator accelerator, DecodeTable table, IDisposable? owner = null)
    {
        _accelerator = accelerator;
        _kernel = new GpuCompressedMatVec(accelerator, table);
        _owner = owner;
        _badRow = accelerator.Allocate1D<int>(1);
    }

    public unsafe void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        if (w.LevelCount != 3) throw new ArgumentException("a coded 2-bit matrix runs on the CPU kernel (the GPU kernels decode ternary codes)");
        w.CheckOperands(x.Length, y.Length, batch);
        lock (_lock)
        {
            nint address;
            fixed (ushort* p = w.Codes) address = (nint)p;
            var key = (address, w.Codes.Length, w.Rows, w.Cols);
            if (!_resident.TryGetValue(key, out var m))
            {
                m = new Resident(_accelerator.Allocate1D<ushort>(Math.Max(1, w.Codes.Length)), _accelerator.Allocate1D<int>(w.RowOffsets.Length),
                    _accelerator.Allocate1D<ushort>(w.Scales.Length));
                ArrayView<ushort> codes = m.Codes.View, scales = m.Scales.View;
                ArrayView<int> offsets = m.RowOffsets.View;
                codes.SubView(0, w.Codes.Length).CopyFromCPU(w.Codes);
                offsets.CopyFromCPU(w.RowOffsets);
                scales.CopyFromCPU(w.Scales);
                _resident[key] = m;
            }
            if (_x == null || _x.Length < x.Length) { _x?.Dispose(); _x = _accelerator.Allocate1D<float>(ICompressedMatVec.MaxBatch * (long)w.Cols); }
            if (_y == null || _y.Length < y.Length) { _y?.Dispose(); _y = _accelerator.Allocate1D<float>(ICompressedMatVec.MaxBatch * (long)w.Rows); }
            ArrayView<float> xv = _x.View.SubView(0, x.Length), yv = _y.View.SubView(0, y.Length);
            xv.CopyFromCPU(x);
            _badRow.MemSetToZero();
            _kernel.Launch(m.Codes.View, m.RowOffsets.View, m.Scales.View, xv, yv, _badRow.View, w.Rows, w.Cols, batch);
            _accelerator.Synchronize();
            yv.CopyToCPU(y);
            Span<int> bad = stackalloc int[1];
            ArrayView<int> badView = _badRow.View;
            badView.CopyToCPU(bad);
            if (bad[0] != 0) throw CompressedMatrix.RowLengthError(bad[0] - 1, -1, w.Cols);
        }
    }

    /// <summary>Matrices copied to the device so far.</summary>
    public int ResidentMatrices { get { lock (_lock) return _resident.Count; } }

    public void Dispose()
    {
        foreach (var m in _resident.Values) { m.Codes.Dispose(); m.RowOffsets.Dispose(); m.Scales.Dispose(); }
        _resident.Clear();
        _x?.Dispose(); _y?.Dispose(); _badRow.Dispose();
        _kernel.Dispose();
        _owner?.Dispose();
    }
}
