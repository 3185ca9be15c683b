using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using Qmoe.Gpu;
using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

/// <summary>The ILGPU kernel on ILGPU's CPU accelerator (warps of 32 emulated, so small shapes), and compiled to PTX.</summary>
public sealed class GpuCompressedMatVecTests : IDisposable
{
    private static readonly TestDict16 Dict = TestDict16.Default;
    // Warps of 32 as on CUDA, one emulated multiprocessor of GpuCompressedMatVec.WarpsPerGroup warps (few OS threads).
    private readonly Context _context = Context.Create(b => b.CPU(new CPUDevice(32, GpuCompressedMatVec.WarpsPerGroup, 1)));
    private readonly Accelerator _accelerator;
    private readonly GpuCompressedMatVec _gpu;
    private readonly ScalarCompressedMatVec _reference = new(Dict.Dictionary);

    public GpuCompressedMatVecTests()
    {
        _accelerator = _context.CreateCPUAccelerator(0);
        _gpu = new GpuCompressedMatVec(_accelerator, DecodeTable.FromDictionary(Dict.Dictionary));
    }

    public void Dispose() { _gpu.Dispose(); _accelerator.Dispose(); _context.Dispose(); }

    [Fact]
    public void MatchesTheReferenceOnTheCpuAccelerator()
    {
        Assert.Equal(32, _accelerator.WarpSize);
        var rnd = new Random(21);
        foreach (var (rows, cols, batch, pad) in new[] { (1, 1, 1, false), (3, 7, 2, true), (17, 33, 1, false), (40, 301, 1, true), (5, 1200, 1, false) })
        {
            var trits = TestDict16.RandomTrits(rnd, rows, cols, 0.885, 0.0, 1.0, 0.6);
            {
                var c = CompressedMatVecTests.Make(rnd, rows, cols, trits, pad);
                var x = CompressedMatVecTests.RandomVector(rnd, batch * cols);
                var yRef = new float[batch * rows];
                _reference.Multiply(c.Matrix, x, yRef, batch);
                var y = new float[batch * rows];
                _gpu.Multiply(c.Matrix, x, y, batch);
                CompressedMatVecTests.AssertClose(yRef, y);
            }
        }
    }

    [Fact]
    public void DenseBf16BaselineMatchesTheCpuKernel()
    {
        var rnd = new Random(8);
        var dense = new GpuDenseMatVec(_accelerator);
        using var parallel = new RowParallel(1);
        var cpu = new DenseMatVec(parallel);
        foreach (var (rows, cols) in new[] { (1, 1), (19, 45), (33, 300) })
        {
            var w = new ushort[rows * cols];
            Qmoe.IO.BFloat16.FromFloat(CompressedMatVecTests.RandomVector(rnd, rows * cols), w);
            var x = CompressedMatVecTests.RandomVector(rnd, cols);
            var yCpu = new float[rows]; var yGpu = new float[rows];
            cpu.Multiply(w, rows, cols, x, yCpu);
            dense.Multiply(w, rows, cols, x, yGpu);
            CompressedMatVecTests.AssertClose(yCpu, yGpu);
        }
    }

    [Fact]
    public void ResidentModelKernelMatchesTheReferenceAndKeepsMatricesOnTheDevice()
    {
        // As CompressedExperts uses it for --device cuda: matrices whose memory never moves (pinned here).
        var rnd = new Random(31);
        using var resident = new ResidentGpuMatVec(_accelerator, DecodeTable.FromDictionary(Dict.Dictionary));
        var cases = Enumerable.Range(0, 2).Select(_ => CompressedMatVecTests.Make(rnd, 9, 70, TestDict16.RandomTrits(rnd, 9, 70, 0.885))).ToArray();
        var pinned = cases.Select(c => { var a = GC.AllocateArray<ushort>(c.Codes.Length, pinned: true); c.Codes.CopyTo(a, 0); return c with { Codes = a }; }).ToArray();
        for (int rep = 0; rep < 2; rep++)
            foreach (var c in pinned)
            {
                int batch = 1 + rep;
                var x = CompressedMatVecTests.RandomVector(rnd, batch * c.Cols);
                var yRef = new float[batch * c.Rows]; var y = new float[batch * c.Rows];
                _reference.Multiply(c.Matrix, x, yRef, batch);
                resident.Multiply(c.Matrix, x, y, batch);
                CompressedMatVecTests.AssertClose(yRef, y);
            }
        Assert.Equal(2, resident.ResidentMatrices);
    }

    [Fact]
    public void RefusesARowThatDoesNotDecodeToCols()
    {
        var rnd = new Random(4);
        var c = CompressedMatVecTests.Make(rnd, 3, 60, TestDict16.RandomTrits(rnd, 3, 60, 0.885));
        var shortRow = c with { Codes = c.Codes[1..], RowOffsets = [0, c.RowOffsets[1] - 1, c.RowOffsets[2] - 1, c.RowOffsets[3] - 1] };
        var e = Assert.Throws<QmoeException>(() => _gpu.Multiply(shortRow.Matrix, new float[60], new float[3]));
        Assert.Contains("row 0", e.Message);
    }

    /// <summary>SM 8.0 (A100) and SM 9.0 (H100/H200, whose CUDA 13 driver takes PTX ISA 8.x).</summary>
    public static TheoryData<CudaArchitecture, CudaInstructionSet> PtxTargets => new()
    {
        { CudaArchitecture.SM_80, CudaInstructionSet.ISA_70 },
        { CudaArchitecture.SM_90, CudaInstructionSet.ISA_88 },
    };

    [Theory]
    [MemberData(nameof(PtxTargets))]
    public void CompilesToPtxWithoutADevice(CudaArchitecture arch, CudaInstructionSet instructionSet)
    {
        using var context = Context.Create(b => b.Default());
        using var backend = new PTXBackend(context, new CudaCapabilityContext(arch), arch, instructionSet, null);
        foreach (var type in new[] { typeof(GpuCompressedMatVec), typeof(GpuDenseMatVec) })
        {
            var method = type.GetMethod("Kernel", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
            var kernel = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method), default);
            string ptx = kernel.PTXAssembly;
            Assert.Contains(".target sm_", ptx); // ILGPU 1.5.3 targets sm_80 PTX at most; the driver JITs it for newer chips
            Assert.Contains(".entry", ptx);
            Assert.Contains("shfl.sync", ptx);  // warp prefix sum and reduction
            Assert.Contains(".shared", ptx);    // x staged in shared memory
            Assert.Contains("bar.sync", ptx);
        }
    }
}
