using BenchmarkDotNet.Running;

// BenchmarkDotNet micro-benchmarks: dotnet run -c Release --project bench/Qmoe.Bench -- --filter '*Gptq*'
// (or no arguments for a menu).
BenchmarkSwitcher.FromAssembly(typeof(Qmoe.Bench.CodecBenchmarks).Assembly).Run(args);
