namespace Qmoe.Compression;

/// <summary>
/// The scratch directory of a run, <c>OUT.qmoe-work</c> beside the output: finished layer files, the block
/// checkpoint, and activation spill files. Kept after a crash or Ctrl+C (spill files excepted) so that
/// <c>--resume</c> can continue; deleted when the output is complete.
/// </summary>
public sealed class CompressionWorkDir
{
    /// <summary>Test hook: the process kills itself (SIGKILL, no cleanup) right after checkpointing this block.</summary>
    public const string CrashAfterBlockVariable = "QMOE_TEST_KILL_AFTER_BLOCK";

    public string Path { get; }
    public string SpillDirectory => System.IO.Path.Combine(Path, "spill");

    public CompressionWorkDir(string outDir) { Path = System.IO.Path.GetFullPath(outDir).TrimEnd('/') + ".qmoe-work"; }

    public string LayerFile(string prefix) => System.IO.Path.Combine(Path, $"layer-{prefix}.safetensors");

    internal void AfterBlockHook(int block)
    {
        if (Environment.GetEnvironmentVariable(CrashAfterBlockVariable) is { } v && int.TryParse(v, out int b) && b == block)
            System.Diagnostics.Process.GetCurrentProcess().Kill();
    }

    public void DeleteSpill()
    {
        try { if (Directory.Exists(SpillDirectory)) Directory.Delete(SpillDirectory, true); } catch (IOException) { }
    }

    public void Delete()
    {
        try { if (Directory.Exists(Path)) Directory.Delete(Path, true); } catch (IOException) { }
    }
}
