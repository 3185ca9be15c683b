namespace Qmoe.Compression;

/// <summary>qmoe_report.json: settings, timings, memory and per-layer outcomes of a compression run.</summary>
public sealed record CompressionReport
{
    public required string Model { get; init; }
    public required string Out { get; init; }
    public required string Format { get; init; }
    public required string Method { get; init; }
    public required string Bits { get; init; }
    public required double Damp { get; init; }
    public required string Calibration { get; init; }
    public required int Samples { get; init; }
    public required bool Premask { get; init; }
    public required double TokenCapFactor { get; init; }
    public required double Seconds { get; init; }
    public required Dictionary<string, double> StageSeconds { get; init; }
    public required long PeakRssBytes { get; init; }
    public required long MemoryBudgetBytes { get; init; }
    /// <summary>Peak resident set per stage: calibrate (forward up to the experts), quantize, recompute (outputs with
    /// the quantized experts), checkpoint, write; the maximum over blocks.</summary>
    public required Dictionary<string, long> StagePeakRssBytes { get; init; }
    /// <summary>One expert's GPTQ working set as reserved from the budget before the run.</summary>
    public required long WorkingSetBytes { get; init; }
    /// <summary>Expert storage in bits per expert parameter, every byte counted (compressed), or the grid's nominal bits (fake-quant).</summary>
    public required double ExpertBitsPerParam { get; init; }
    public required bool Resumed { get; init; }
    public required IReadOnlyList<FallbackRecord> Fallbacks { get; init; }
    public required IReadOnlyList<CapRecord> Capped { get; init; }
    public required IReadOnlyList<LayerStatistics> Layers { get; init; }
    /// <summary><c>--target-bits</c> runs: the mixed-precision allocation (issue 16); null otherwise.</summary>
    public AllocationReport? Allocation { get; init; }
}

/// <summary>The allocation of a <c>--target-bits</c> run as recorded in qmoe_report.json.</summary>
public sealed record AllocationReport(double TargetBits, double PredictedBits, double AchievedBits, double PredictedError,
    double MinBits, double MaxBits, IReadOnlyDictionary<string, int> Counts, IReadOnlyDictionary<string, string> Types)
{
    public static AllocationReport Of(AllocationPlan plan, double achievedBits) => new(plan.TargetBits, plan.PredictedBits,
        achievedBits, plan.PredictedError, plan.MinBits, plan.MaxBits, plan.Counts,
        plan.Types.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => Quantization.QuantTypeInfo.Of(kv.Value).Name));
}
