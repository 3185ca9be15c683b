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
        string root = FindRoot();
        string fixtures = Environment.GetEnvironmentVariable("QMOE_FIXTURES") ?? Path.Combine(root, "..", "shared", "fixtures");
        string model = Path.Combine(fixtures, "switch-small-32");
        if (!Directory.Exists(model)) throw new InvalidOperationException($"{model} not found: set QMOE_FIXTURES");
        Qmoe.Threads.Count = Threads;
        _model = ModelLoader.Open(model);
        _set = EvalSet.Load(Path.Combine(root, "data", "eval_sets.safetensors"), "validation", _model.VocabSize, limit: 32);
    }

    [Benchmark] public double Eval32Examples() => _model.Evaluate(_set).MeanCe;

    [GlobalCleanup] public void Cleanup() => _model.Dispose();

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Qmoe.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}
