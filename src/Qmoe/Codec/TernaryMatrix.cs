namespace Qmoe.Codec;

/// <summary>
/// A quantized expert matrix as the GPTQ layer produces it. <see cref="Trits"/>: [Rows, Cols] row-major, one byte
/// per weight (0 = zero, 1 = row min, 2 = row max); <see cref="Scales"/>: bf16 bits [Rows, 2] = (min, max) per row.
/// Weight (r, c) = {0, min_r, max_r}[Trits[r·Cols + c]].
/// </summary>
public sealed record TernaryMatrix(int Rows, int Cols, byte[] Trits, ushort[] Scales)
{
    /// <summary>Throws unless the array lengths match the shape.</summary>
    public void Validate(string what)
    {
        if (Rows < 0 || Cols < 0 || Trits.Length != (long)Rows * Cols || Scales.Length != 2L * Rows)
            throw new QmoeException($"{what}: {Trits.Length} trits and {Scales.Length} scales do not fit shape [{Rows}, {Cols}]");
    }
}
