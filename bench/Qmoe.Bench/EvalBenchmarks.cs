using BenchmarkDotNet.Attributes;
using Qmoe.Runtime;

namespace Qmoe.Bench;

/// <summary>
/// Eval throughput (span-corruption CE, teacher-forced) of switch-small-32 with 1 and 2 threads; 1 thread is the
/// baseline. Needs the shared fixtures (QMOE_FIXTURES or ../shared/fixtures beside the clone).
/// </summary>
[MemoryDiagnoser]
public class EvalBenchmarks
{
    private IRunnableModel _model = null!;
    private EvalSet _set = null!;

    [Params(1, 2)] public int Threads;

    [GlobalSetup]
    public void Setup()
    {
        Qmoe.Threads.Count = Threads;
        _model = ModelLoader.Open(BenchPaths.Fixture("switch-small-32"));
        _set = EvalSet.Load(Path.Combine(BenchPaths.Root, "data", "eval_sets.safetensors"), "validation", _model.VocabSize, limit: 32);
    }

    [Benchmark] public double Eval32Examples() => _model.Evaluate(_set).MeanCe;

    [GlobalCleanup] public void Cleanup() => _model.Dispose();
}
