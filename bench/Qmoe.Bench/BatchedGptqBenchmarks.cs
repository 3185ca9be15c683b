using BenchmarkDotNet.Attributes;
using Qmoe.Quantization;

namespace Qmoe.Bench;

/// <summary>16 experts W 3072x768 (H 768²), all cores: one batched call against 16 single GPTQ runs (baseline).</summary>
public class BatchedGptqBenchmarks
{
    private const int Experts = 16, Rows = 3072, Cols = 768;
    private SyntheticLayer[] _layers = [];
    private float[] _w = [], _h = [];
    private readonly string[] _names = Enumerable.Range(0, Experts).Select(e => $"expert_{e}").ToArray();
    private readonly GptqOptions _options = new() { Type = QuantType.Ternary };

    [GlobalSetup]
    public void Setup()
    {
        _layers = Enumerable.Range(0, Experts).Select(e => SyntheticLayer.Create(Rows, Cols, 2 * Cols, 100 + e)).ToArray();
        _w = _layers.SelectMany(l => l.W).ToArray();
        _h = _layers.SelectMany(l => l.H).ToArray();
    }

    [Benchmark(Baseline = true)]
    public void SingleRuns()
    {
        foreach (var l in _layers) Gptq.Quantize(l.W, Rows, Cols, l.H, _options);
    }

    [Benchmark]
    public GptqBatchResult Batched() => GptqBatch.Quantize(_w, _h, Rows, Cols, _names, [], _options);
}
