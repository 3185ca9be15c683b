namespace Qmoe.Bench;

/// <summary>The repository root (the folder holding Qmoe.slnx) and the shared fixtures (QMOE_FIXTURES, else ../shared/fixtures beside the clone).</summary>
internal static class BenchPaths
{
    public static string Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Qmoe.slnx"))) return d.FullName;
            throw new InvalidOperationException("repository root not found");
        }
    }

    /// <summary>A path under the shared fixtures; throws naming it when absent.</summary>
    public static string Fixture(params string[] parts)
    {
        string root = Environment.GetEnvironmentVariable("QMOE_FIXTURES") is { Length: > 0 } env ? env : Path.Combine(Root, "..", "shared", "fixtures");
        string path = Path.GetFullPath(Path.Combine([root, .. parts]));
        if (!Path.Exists(path)) throw new InvalidOperationException($"{path} not found: set QMOE_FIXTURES");
        return path;
    }
}
