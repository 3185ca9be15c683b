namespace Qmoe.Tests;

/// <summary>Locations of the repository's embedded model and test data, and of the optional shared fixtures.</summary>
public static class Paths
{
    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Qmoe.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root (Qmoe.slnx) not found");
    }

    public static string TinyModel => Path.Combine(RepoRoot, "models", "switch-tiny-8");
    public static string TestData => Path.Combine(RepoRoot, "tests", "data");
    public static string EvalSets => Path.Combine(RepoRoot, "data", "eval_sets.safetensors");
    public static string CalibrationText => Path.Combine(RepoRoot, "data", "calibration.txt");

    /// <summary>The shared fixtures (beside the clone, or QMOE_FIXTURES); null when absent.</summary>
    public static string? Fixtures
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("QMOE_FIXTURES");
            if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
            var p = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));
            return Directory.Exists(p) ? p : null;
        }
    }

    /// <summary>A fixture path, or null (the caller skips with <see cref="FixtureMissing"/>) when the fixtures are absent.</summary>
    public static string? Fixture(params string[] parts) =>
        Fixtures is { } f && Path.Combine([f, .. parts]) is var p && (File.Exists(p) || Directory.Exists(p)) ? p : null;

    public const string FixtureMissing = "shared fixtures (../shared/fixtures or QMOE_FIXTURES) not present";

    /// <summary>A temporary copy of a model directory's files (for tests that damage them).</summary>
    public static TempDir CopyOf(string dir)
    {
        var tmp = new TempDir();
        foreach (var f in Directory.GetFiles(dir)) System.IO.File.Copy(f, System.IO.Path.Combine(tmp.Path, System.IO.Path.GetFileName(f)));
        return tmp;
    }

    /// <summary>A fresh temporary directory, deleted on Dispose.</summary>
    public static TempDir Temp() => new();

    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("qmoe-test-").FullName;
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
