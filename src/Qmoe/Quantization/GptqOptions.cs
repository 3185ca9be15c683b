namespace Qmoe.Quantization;

/// <summary>Settings of <see cref="Gptq"/>.</summary>
public sealed record GptqOptions
{
    /// <summary>Grid type.</summary>
    public QuantType Type { get; init; } = QuantType.Ternary;
    /// <summary>Damping relative to mean(diag H); null = the type's default (<see cref="QuantTypeInfo.DefaultDamp"/>).</summary>
    public double? Damp { get; init; }
    /// <summary>Columns per block; updates beyond the block are applied lazily by one GEMM per block.</summary>
    public int BlockSize { get; init; } = 128;
    /// <summary>Process columns in order of decreasing diag(H) (GPTQ's act-order).</summary>
    public bool ActOrder { get; init; }
    /// <summary>When the Cholesky fails, retry this many times with damping ×10 each, then fall back to RTN.</summary>
    public int MaxDampRetries { get; init; } = 3;
    /// <summary>Ternary only: the row grid's levels widened to stretch · (min, max) (<see cref="RowGrid.Fit"/>).</summary>
    public float TernaryStretch { get; init; } = 1f;
    /// <summary>Worker threads (0 = all cores).</summary>
    public int Threads { get; init; }

    internal double EffectiveDamp => Damp ?? QuantTypeInfo.Of(Type).DefaultDamp;
}
