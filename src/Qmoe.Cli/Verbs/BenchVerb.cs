using System.CommandLine;

namespace Qmoe.Cli;

/// <summary>The <c>bench</c> verb: performance measurements as JSON (SPEC §7); one subcommand class per benchmark.</summary>
internal static class BenchVerb
{
    public static Command Create()
    {
        var bench = new Command("bench", "performance measurements, reported as ratios against baselines measured in the same run");
        bench.Subcommands.Add(BenchGptq.Create());
        return bench;
    }
}
