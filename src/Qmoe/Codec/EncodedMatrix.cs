namespace Qmoe.Codec;

/// <summary>
/// One ternary matrix [Rows, Cols] in dict16 code: row r is <c>Codes[RowOffsets[r] .. RowOffsets[r + 1]]</c>,
/// each row encoded on its own (its last codeword may cover padding past the row end).
/// </summary>
public sealed record EncodedMatrix(int Rows, int Cols, ushort[] Codes, int[] RowOffsets)
{
    /// <summary>The codes of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<ushort> Row(int row) => Codes.AsSpan(RowOffsets[row], RowOffsets[row + 1] - RowOffsets[row]);
}
