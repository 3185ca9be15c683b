using BenchmarkDotNet.Running;

// Runs the benchmarks chosen on the command line, e.g. `dotnet run -c Release -- --filter *Codec*`.
BenchmarkSwitcher.FromAssembly(typeof(Qmoe.Bench.CodecBenchmarks).Assembly).Run(args);
