namespace Qmoe.Compression;

/// <summary>
/// Bytes of activations the pipeline may hold in RAM (<c>--memory-budget</c>); buffers that would exceed it
/// are placed in memory-mapped spill files under <see cref="SpillDirectory"/> instead.
/// </summary>
public sealed class MemoryBudget(long limitBytes, string spillDirectory)
{
    private long _used;

    public long Limit { get; } = limitBytes;
    public long Used => Interlocked.Read(ref _used);
    public string SpillDirectory { get; } = spillDirectory;

    /// <summary>Reserves <paramref name="bytes"/> if they fit under the limit.</summary>
    public bool TryReserve(long bytes)
    {
        while (true)
        {
            long used = Used;
            if (used + bytes > Limit) return false;
            if (Interlocked.CompareExchange(ref _used, used + bytes, used) == used) return true;
        }
    }

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);
}
