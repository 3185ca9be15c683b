using System.CommandLine;

namespace Qmoe.Cli;

/// <summary>Options shared by several verbs.</summary>
internal static class CommonOptions
{
    public static Option<bool> Json() => new("--json") { Description = "print one JSON object on stdout (human text on stderr)" };

    public static Option<string> Model() => new("--model") { Description = "model directory (Hugging Face checkpoint or compressed)", Required = true };

    public static Option<int> Threads() => new("--threads") { Description = "threads to use (default: all cores)", DefaultValueFactory = _ => 0 };

    /// <summary>Applies --threads to the library's kernels.</summary>
    public static void ApplyThreads(int threads)
    {
        if (threads < 0) throw new QmoeException($"--threads {threads} must not be negative");
        Qmoe.Threads.Count = threads;
    }
}
