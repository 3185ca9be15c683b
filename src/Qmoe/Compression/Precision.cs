using System.Globalization;
using Qmoe.Quantization;

namespace Qmoe.Compression;

/// <summary>
/// One candidate precision of an expert matrix for <c>--target-bits</c>: a type, and for ternary the grid stretch
/// (<see cref="RowGrid.Fit"/>: levels stretch · (min, max), more zeros, fewer code bytes; stored like any ternary
/// matrix). Names: "ternary", "ternary-1.25", "2", "3", "4".
/// </summary>
public readonly record struct Precision(QuantType Type, float Stretch = 1f)
{
    /// <summary>What the probe measures, smallest first: QMoE's ternary, two sparser ternaries, 2, 3 and 4 bits.</summary>
    public static readonly Precision[] Candidates =
    [
        new(QuantType.Ternary), new(QuantType.Ternary, 1.25f), new(QuantType.Ternary, 1.5f),
        new(QuantType.Int2), new(QuantType.Int3), new(QuantType.Int4),
    ];

    public string Name => Stretch == 1f ? QuantTypeInfo.Of(Type).Name
        : $"{QuantTypeInfo.Of(Type).Name}-{Stretch.ToString(CultureInfo.InvariantCulture)}";

    public static Precision Parse(string name)
    {
        int dash = name.IndexOf('-');
        if (dash < 0) return new(QuantTypeInfo.Parse(name).Type);
        var type = QuantTypeInfo.Parse(name[..dash]).Type;
        if (type != QuantType.Ternary || !float.TryParse(name[(dash + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out float s) || !(s >= 1f && s <= 4f))
            throw new QmoeException($"unknown precision '{name}' (expected ternary, ternary-S with 1 ≤ S ≤ 4, 2, 3 or 4)");
        return new(type, s);
    }
}
