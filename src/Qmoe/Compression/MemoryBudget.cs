namespace Qmoe.Compression;

/// <summary>
/// The run's memory budget (<c>--memory-budget</c>). It covers GPTQ's working set — reserved up front for at least
/// one expert (<see cref="ReserveWorkingSet"/>), so the run is refused before any work when even that does not
/// fit — and the activations: buffers that would exceed what is left are placed in memory-mapped spill files under
/// <see cref="SpillDirectory"/> instead, whose touched pages are dropped from the resident set after each chunk and
/// group (<see cref="TrimSpills"/>). Also records the peak resident set per pipeline stage.
/// </summary>
public sealed class MemoryBudget(long limitBytes, string spillDirectory)
{
    private long _used;
    private readonly List<ActivationBuffer> _spilled = new();

    public long Limit { get; } = limitBytes;
    public long Used => Interlocked.Read(ref _used);
    public string SpillDirectory { get; } = spillDirectory;
    /// <summary>Bytes reserved for the quantizer's working set (part of <see cref="Used"/>).</summary>
    public long WorkingSet { get; private set; }
    /// <summary>Peak resident set per stage (bytes), filled by <see cref="Lap"/>.</summary>
    public Dictionary<string, long> StagePeaks { get; } = new();

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

    /// <summary>Reserves the quantizer's minimal working set before activations claim the budget; false if it does not fit.</summary>
    public bool ReserveWorkingSet(long bytes)
    {
        if (!TryReserve(bytes)) return false;
        WorkingSet += bytes;
        return true;
    }

    /// <summary>Bytes a group of experts may use: the reserved working set plus whatever the activations left free.</summary>
    public long AvailableForWorkingSet => WorkingSet + Math.Max(0, Limit - Used);

    internal void AddSpilled(ActivationBuffer b) { lock (_spilled) _spilled.Add(b); }
    internal void RemoveSpilled(ActivationBuffer b) { lock (_spilled) _spilled.Remove(b); }

    /// <summary>Drops the spill files' mapped pages from the resident set (their data stays in the file / page cache).</summary>
    public void TrimSpills()
    {
        lock (_spilled) foreach (var b in _spilled) b.Trim();
    }

    /// <summary>Ends a stage: records the peak RSS since the previous lap under <paramref name="stage"/> (the max over
    /// laps of the same name) and resets the kernel's peak counter where it can.</summary>
    public void Lap(string stage)
    {
        long peak = ResidentSet.PeakAndReset();
        StagePeaks[stage] = Math.Max(StagePeaks.GetValueOrDefault(stage), peak);
    }
}
