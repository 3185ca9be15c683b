using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// Where the row loops get row r's four levels, indexed by a weight's 2-bit symbol: a ternary matrix's bf16 (min, max)
/// per row give [0, min, max, 0]; a coded 2-bit matrix's grid (f32 scale, u8 zero point per row) gives
/// scale · (((t + zero) mod 4) − zero) for t = 0..3 (<see cref="CompressedMatrix.GridLevel"/>). A permute index whose upper
/// bits belong to the next symbol still picks the right level, since the loops replicate the four across the vector.
/// </summary>
internal readonly unsafe struct RowLevels
{
    private readonly ushort* _scales;
    private readonly float* _gridScales;
    private readonly byte* _gridZeros;

    /// <param name="scales">bf16 (min, max) per row (ternary), or null</param>
    /// <param name="gridScales">f32 per row (coded 2-bit), or null for ternary</param>
    /// <param name="gridZeros">u8 zero point per row (coded 2-bit)</param>
    public RowLevels(ushort* scales, float* gridScales = null, byte* gridZeros = null)
    {
        _scales = scales; _gridScales = gridScales; _gridZeros = gridZeros;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector128<float> Get(int r)
    {
        if (_gridScales == null) return Vector128.Create(0f, BFloat16.ToFloat(_scales[2 * r]), BFloat16.ToFloat(_scales[2 * r + 1]), 0f);
        var zero = Vector128.Create((int)_gridZeros[r]);
        var steps = ((Vector128.Create(0, 1, 2, 3) + zero) & Vector128.Create(3)) - zero; // the symbols' grid codes minus the zero point
        return Vector128.ConvertToSingle(steps) * Vector128.Create(_gridScales[r]);
    }
}
