using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Qmoe.Bench -- --filter '*Gptq*'   (or no arguments for a menu)
BenchmarkSwitcher.FromAssembly(typeof(Qmoe.Bench.GemmBenchmarks).Assembly).Run(args);
