namespace Qmoe.Cli;

/// <summary>Finds the repository's embedded model and data (for <c>demo</c>), from the working directory or the binary's location.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (Directory.Exists(Path.Combine(d.FullName, "models", "switch-tiny-8"))) return d.FullName;
        throw new QmoeException("the embedded model models/switch-tiny-8 was not found; run the demo from the qmoe repository");
    }

    public static string TinyModel => Path.Combine(Root, "models", "switch-tiny-8");
    public static string EvalSets => Path.Combine(Root, "data", "eval_sets.safetensors");
    public static string CalibrationText => Path.Combine(Root, "data", "calibration.txt");
}
