namespace Qmoe.IO;

/// <summary>
/// Writes that never leave a half-written file under the final name: data goes to "<c>name.tmp-PID</c>",
/// is flushed to disk, then renamed over the target. A failure (full disk, exception) deletes the temporary.
/// </summary>
public static class AtomicFile
{
    public static string TempName(string path) => $"{path}.tmp-{Environment.ProcessId}";

    /// <summary>Runs <paramref name="write"/> on a temporary stream, fsyncs, renames to <paramref name="path"/>.</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string tmp = TempName(path);
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch (IOException e)
        {
            TryDelete(tmp);
            throw new QmoeException($"{path}: write failed: {e.Message}", e);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, fs => { using var w = new StreamWriter(fs, leaveOpen: true); w.Write(text); });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, fs => fs.Write(copy));
    }

    internal static void TryDelete(string path)
    {
        try { if (File.Exists(path)) File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
