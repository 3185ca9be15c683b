using System.CommandLine;

namespace Qmoe.Cli;

/// <summary><c>bench</c>: speed measurements reported as ratios against baselines run in the same process (SPEC §7).</summary>
internal static class BenchVerb
{
    public static Command Create()
    {
        var bench = new Command("bench", "speed measurements as ratios against baselines measured in the same run");
        bench.Subcommands.Add(BenchGptq.Create());
        bench.Subcommands.Add(BenchMatvec.Create());
        bench.Subcommands.Add(BenchE2e.Create());
        bench.Subcommands.Add(BenchTokenize.Create());
        bench.Subcommands.Add(BenchE2e.CreateWorker());
        return bench;
    }
}
