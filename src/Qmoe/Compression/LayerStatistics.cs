namespace Qmoe.Compression;

/// <summary>What happened to one expert matrix kind of one sparse layer (for qmoe_report.json and the demo plot).</summary>
public sealed record LayerStatistics
{
    /// <summary>e.g. "encoder.block.1.layer.1.mlp.experts.wi"</summary>
    public required string Name { get; init; }
    public required int Experts { get; init; }
    public required int Rows { get; init; }
    public required int Cols { get; init; }
    /// <summary>Calibration tokens each expert was quantized from (after the cap and pre-masking).</summary>
    public required int[] TokensPerExpert { get; init; }
    /// <summary>Σ‖(W − Q) Xᵀ‖² / Σ‖W Xᵀ‖² over the layer's experts (calibration inputs).</summary>
    public required double RelativeError { get; init; }
    /// <summary>Fraction of quantized weights equal to zero.</summary>
    public required double ZeroFraction { get; init; }
    /// <summary>Per expert: ‖(W − Q) Xᵀ‖² / ‖W Xᵀ‖² on its calibration inputs (0 for an expert without tokens).</summary>
    public double[] ExpertRelativeErrors { get; init; } = [];
    /// <summary>Per expert: fraction of its quantized weights equal to zero.</summary>
    public double[] ExpertZeroFractions { get; init; } = [];
}

/// <summary>An expert quantized by RTN instead of GPTQ, and why.</summary>
public sealed record FallbackRecord(string Name, string Reason);

/// <summary>An expert whose calibration tokens were capped.</summary>
public sealed record CapRecord(string Name, int Tokens, int Cap);
