using BenchmarkDotNet.Attributes;
using Qmoe.Cli.Bench;
using Qmoe.Kernels;

namespace Qmoe.Bench;

/// <summary>
/// y = W x at batch 1, one sweep over the wi (or wo) matrices of every expert of a synthetic switch-base-128
/// layer (as <c>qmoe bench matvec</c>, with 32 experts here to keep each benchmark process's setup short:
/// still 150 MB of bf16 per kind, far beyond the last-level cache): dense f32 (baseline), dense bf16, dict16.
/// </summary>
[MemoryDiagnoser]
public class MatVecBenchmarks
{
    private const int Experts = 32;
    private static ExpertLayerWorkload? s_layer;

    [Params("wi", "wo")] public string Case { get; set; } = "wi";
    [Params(1, 2)] public int Threads { get; set; }

    private ExpertLayerWorkload.MatrixSet _set = null!;
    private RowParallel _parallel = null!;
    private DenseMatVec _dense = null!;
    private SimdCompressedMatVec _compressed = null!;
    private float[] _x = [], _y = [];

    [GlobalSetup]
    public void Setup()
    {
        s_layer ??= new ExpertLayerWorkload(Experts);
        _set = Case == "wi" ? s_layer.Wi : s_layer.Wo;
        _parallel = new RowParallel(Threads);
        _dense = new DenseMatVec(_parallel);
        _compressed = new SimdCompressedMatVec(DecodeTable.FromDictionary(s_layer.Dictionary.Entries), _parallel);
        var rnd = new Random(1);
        _x = Enumerable.Range(0, _set.Cols).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        _y = new float[_set.Rows];
    }

    [GlobalCleanup]
    public void Cleanup() => _parallel.Dispose();

    [Benchmark(Baseline = true)]
    public void DenseF32()
    {
        for (int e = 0; e < Experts; e++) _dense.Multiply(_set.DenseF32[e], _set.Rows, _set.Cols, _x, _y);
    }

    [Benchmark]
    public void DenseBf16()
    {
        for (int e = 0; e < Experts; e++) _dense.Multiply(_set.DenseBf16[e], _set.Rows, _set.Cols, _x, _y);
    }

    [Benchmark]
    public void Compressed()
    {
        for (int e = 0; e < Experts; e++) _compressed.Multiply(_set.Compressed(e), _x, _y);
    }
}
