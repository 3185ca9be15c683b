using System.Diagnostics;

namespace Qmoe.Compression;

/// <summary>
/// The process's resident set: current and peak (Linux VmHWM). On Linux the peak can be reset (writing 5 to
/// /proc/self/clear_refs), which gives peaks per pipeline stage; <see cref="Peak"/> remembers the run's overall maximum.
/// </summary>
public static class ResidentSet
{
    private static long _overall;

    /// <summary>The highest peak seen by any <see cref="PeakAndReset"/> or <see cref="Peak"/> call in this process.</summary>
    public static long Peak()
    {
        long now = ReadPeak();
        lock (typeof(ResidentSet)) _overall = Math.Max(_overall, now);
        return _overall;
    }

    /// <summary>Peak since the last reset; then resets the kernel's counter (no-op where unsupported).</summary>
    public static long PeakAndReset()
    {
        long peak = ReadPeak();
        lock (typeof(ResidentSet)) _overall = Math.Max(_overall, peak);
        try { File.WriteAllText("/proc/self/clear_refs", "5"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException) { }
        return peak;
    }

    private static long ReadPeak()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim()) * 1024;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        using var p = Process.GetCurrentProcess();
        p.Refresh();
        return p.PeakWorkingSet64;
    }
}
