namespace Qmoe.Quantization;

/// <summary>The supported weight quantization types (per-row grids).</summary>
public enum QuantType
{
    /// <summary>{row min, 0, row max} (QMoE); levels rounded to bf16.</summary>
    Ternary,
    /// <summary>Asymmetric min-max grid with 4 levels.</summary>
    Int2,
    /// <summary>Asymmetric min-max grid with 8 levels.</summary>
    Int3,
    /// <summary>Asymmetric min-max grid with 16 levels.</summary>
    Int4,
}

/// <summary>Traits of a <see cref="QuantType"/>.</summary>
/// <param name="Type">The type.</param>
/// <param name="Name">CLI / config name: "ternary", "2", "3", "4".</param>
/// <param name="Levels">Number of grid points per row.</param>
/// <param name="Bits">Bits per weight of a plain fixed-width code (log2 3 ≈ 1.585 for ternary).</param>
/// <param name="DefaultDamp">GPTQ damping relative to mean(diag H): 0.1 for ternary (QMoE), 0.01 for n-bit (GPTQ).</param>
public sealed record QuantTypeInfo(QuantType Type, string Name, int Levels, double Bits, double DefaultDamp)
{
    /// <summary>The table of all types, indexed by <see cref="QuantType"/>.</summary>
    public static IReadOnlyList<QuantTypeInfo> All { get; } =
    [
        new(QuantType.Ternary, "ternary", 3, Math.Log2(3), 0.1),
        new(QuantType.Int2, "2", 4, 2, 0.01),
        new(QuantType.Int3, "3", 8, 3, 0.01),
        new(QuantType.Int4, "4", 16, 4, 0.01),
    ];

    /// <summary>Traits of <paramref name="type"/>.</summary>
    public static QuantTypeInfo Of(QuantType type) => All[(int)type];

    /// <summary>Parses a name of <see cref="All"/> (as given to <c>--bits</c>); <see cref="QmoeException"/> otherwise.</summary>
    public static QuantTypeInfo Parse(string name) =>
        All.FirstOrDefault(t => t.Name == name.Trim().ToLowerInvariant())
        ?? throw new QmoeException($"unknown quantization type '{name}' (expected one of: {string.Join(", ", All.Select(t => t.Name))})");
}
