namespace Qmoe.Compression;

/// <summary>
/// The run's memory budget (<c>--memory-budget</c>). It covers the working set — reserved up front
/// (<see cref="ReserveWorkingSet"/>, sized by <see cref="WorkingSet"/>), so the run is refused before any work when
/// even that does not fit — and the activations: buffers that would exceed what is left are placed in memory-mapped
/// spill files under <see cref="SpillDirectory"/> instead. After each chunk, expert and group <see cref="TrimResident"/>
/// brings the resident set back to what is live, so RSS follows the budget, not the data walked. Also records the
/// peak resident set per pipeline stage.
/// </summary>
public sealed class MemoryBudget(long limitBytes, string spillDirectory)
{
    private long _used;
    private readonly List<ActivationBuffer> _spilled = new();
    private readonly List<IO.TensorStore> _stores = new();

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

    /// <summary>Includes <paramref name="store"/>'s mapped checkpoint in <see cref="TrimResident"/>.</summary>
    public void Track(IO.TensorStore store) { lock (_stores) _stores.Add(store); }

    /// <summary>
    /// Brings the resident set back to what is live, after a chunk, an expert or a group: drops the spill files' and
    /// tracked checkpoints' mapped pages (their data stays in the files and the page cache) and the checkpoints'
    /// dequantized FP8 weights, then runs a blocking full collection that compacts the large-object heap and
    /// decommits the freed memory (<see cref="GCCollectionMode.Aggressive"/>). The pass's temporaries are 10–500 MB
    /// arrays, which the GC would otherwise let pile up by gigabytes before collecting (measured on DeepSeek-V3 width:
    /// 2 GiB above the live set), and whose freed memory it would keep committed for reuse.
    /// </summary>
    public void TrimResident()
    {
        lock (_spilled) foreach (var b in _spilled) b.Trim();
        lock (_stores) foreach (var s in _stores) s.DropResident();
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    /// <summary>
    /// A blocking full collection without compaction, between the experts of a group: each expert's temporaries (GPTQ's
    /// damped H and W copies, the output error's products: 50–300 MB arrays at switch-c-2048 width) are freed for the next
    /// expert to reuse. Left to the GC they piled up until the group ended, and with the GC's own slack took a
    /// switch-c-2048 slice 150–190 MiB over its 4 GiB budget.
    /// Costs milliseconds (a few large arrays to mark), unlike <see cref="TrimResident"/>'s compaction.
    /// </summary>
    public static void CollectGarbage() => GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false);

    /// <summary>Ends a stage: records the peak RSS since the previous lap under <paramref name="stage"/> (the max over
    /// laps of the same name) and resets the kernel's peak counter where it can.</summary>
    public void Lap(string stage)
    {
        long peak = ResidentSet.PeakAndReset();
        StagePeaks[stage] = Math.Max(StagePeaks.GetValueOrDefault(stage), peak);
    }
}
