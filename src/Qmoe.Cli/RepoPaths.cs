namespace Qmoe.Cli;

/// <summary>Finds the repository's embedded model and data (for <c>demo</c> and the <c>bench</c> verbs' default inputs), from the
/// working directory or the binary's location.</summary>
internal static class RepoPaths
{
    private static string? _root;

    /// <summary>The repository root; a <see cref="QmoeException"/> (not a type-initializer failure) when there is none.</summary>
    public static string Root => _root ??= Find();

    private static string Find()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (Directory.Exists(Path.Combine(d.FullName, "models", "switch-tiny-8"))) return d.FullName;
        throw new QmoeException("the qmoe repository (models/switch-tiny-8, data/) was not found above the working directory or the binary; run this from a qmoe checkout");
    }

    public static string TinyModel => Path.Combine(Root, "models", "switch-tiny-8");
    public static string EvalSets => Path.Combine(Root, "data", "eval_sets.safetensors");
    public static string CalibrationText => Path.Combine(Root, "data", "calibration.txt");
}
