using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// Where the window loops get row r's four levels, indexed by a weight's 2-bit symbol: a ternary matrix's bf16
/// (min, max) per row give [0, min, max, 0]; a coded 2-bit matrix (<see cref="CompressedMatrix.Levels"/>) stores them,
/// f32 [rows, 4]. A permute index whose upper bits belong to the next symbol still picks the right level, since the
/// loops replicate the four across the vector.
/// </summary>
internal readonly unsafe struct RowLevels
{
    private readonly ushort* _scales;
    private readonly float* _levels;

    /// <param name="scales">bf16 (min, max) per row, or null with <paramref name="levels"/></param>
    /// <param name="levels">f32 [rows, 4], or null for ternary scales</param>
    public RowLevels(ushort* scales, float* levels) { _scales = scales; _levels = levels; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector128<float> Get(int r) => _levels != null
        ? Vector128.Load(_levels + 4 * (nint)r)
        : Vector128.Create(0f, BFloat16.ToFloat(_scales[2 * r]), BFloat16.ToFloat(_scales[2 * r + 1]), 0f);
}
