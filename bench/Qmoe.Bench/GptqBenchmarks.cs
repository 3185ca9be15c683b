using BenchmarkDotNet.Attributes;
using Qmoe.Numerics;
using Qmoe.Quantization;

namespace Qmoe.Bench;

/// <summary>
/// Ternary GPTQ on switch-base expert shapes (wi: W 3072x768, H 768²; wo: W 768x3072, H 3072²) with 1 thread and all
/// cores, the Hinv step alone, against RTN on the same matrix as the baseline.
/// </summary>
[MemoryDiagnoser]
public class GptqBenchmarks
{
    private SyntheticLayer _layer = null!;

    [Params("3072x768", "768x3072")]
    public string Shape { get; set; } = "3072x768";

    [GlobalSetup]
    public void Setup()
    {
        var parts = Shape.Split('x');
        int rows = int.Parse(parts[0]), cols = int.Parse(parts[1]);
        _layer = SyntheticLayer.Create(rows, cols, Math.Min(2 * cols, 4096), rows + cols);
    }

    [Benchmark(Baseline = true)]
    public QuantizedWeight Rtn() => Quantization.Rtn.Quantize(QuantType.Ternary, _layer.W, _layer.Rows, _layer.Cols);

    [Benchmark]
    public QuantizedWeight Gptq_1Thread() => Run(1);

    [Benchmark]
    public QuantizedWeight Gptq_AllCores() => Run(0);

    [Benchmark]
    public bool Hinv_AllCores()
    {
        int n = _layer.Cols;
        var h = (float[])_layer.H.Clone();
        for (int i = 0; i < n; i++) h[i * n + i] += 0.01f;
        return Cholesky.TryInverseUpperFactor(h, n, new float[n * n], 0);
    }

    private QuantizedWeight Run(int threads) =>
        Gptq.Quantize(_layer.W, _layer.Rows, _layer.Cols, _layer.H, new GptqOptions { Type = QuantType.Ternary, Threads = threads });
}
