namespace Qmoe.Codec;

/// <summary>One expert matrix handed to <see cref="CompressedModelWriter"/>: ternary (dict16-coded) or n-bit (bit-packed); exactly one is set.</summary>
public sealed record StoredExpert(TernaryMatrix? Ternary, PackedNBitMatrix? NBit)
{
    public static StoredExpert Of(TernaryMatrix m) => new(m, null);
    public static StoredExpert Of(PackedNBitMatrix m) => new(null, m);

    public int Rows => Ternary?.Rows ?? NBit!.Rows;
    public int Cols => Ternary?.Cols ?? NBit!.Cols;
    /// <summary>The stored type: <see cref="NBitGroup.TernaryType"/> or the bits.</summary>
    public byte Type => Ternary != null ? NBitGroup.TernaryType : (byte)NBit!.Bits;
}
