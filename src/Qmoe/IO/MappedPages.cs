namespace Qmoe.IO;

/// <summary>
/// Drops a memory mapping's pages from the process's resident set (Linux <c>madvise(MADV_DONTNEED)</c>). Read-only
/// file pages stay in the page cache and dirty pages of a shared file mapping go to the file; the next access faults
/// them back in. Without this every page ever touched stays counted in RSS until the kernel reclaims it, so RSS
/// would grow with the data walked (checkpoint, spill files) rather than with the memory budget. No-op elsewhere.
/// </summary>
internal static unsafe class MappedPages
{
    private const int MadvDontNeed = 4;

    /// <summary><paramref name="start"/> must be page-aligned (a mapping's base address).</summary>
    public static void DropResident(byte* start, ulong length)
    {
        if (start == null || length == 0 || !OperatingSystem.IsLinux()) return;
        Madvise(start, (nuint)length, MadvDontNeed);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static extern int Madvise(void* addr, nuint length, int advice);
}
