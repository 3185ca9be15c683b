using BenchmarkDotNet.Attributes;
using Qmoe.Numerics;

namespace Qmoe.Bench;

/// <summary>f32 GEMM 2048³ (17.2 GFLOP per call): all cores against one thread; Hinv (Cholesky + triangular inverse) of 3072².</summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private const int N = 2048;
    private float[] _a = [], _b = [], _c = [];

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(1);
        _a = Enumerable.Range(0, N * N).Select(_ => (float)rng.NextDouble()).ToArray();
        _b = Enumerable.Range(0, N * N).Select(_ => (float)rng.NextDouble()).ToArray();
        _c = new float[N * N];
    }

    [Benchmark(Baseline = true)]
    public void Gemm2048_1Thread() => Gemm.Multiply(false, false, N, N, N, 1f, _a, N, _b, N, 0f, _c, N, 1);

    [Benchmark]
    public void Gemm2048_AllCores() => Gemm.Multiply(false, false, N, N, N, 1f, _a, N, _b, N, 0f, _c, N, 0);
}
