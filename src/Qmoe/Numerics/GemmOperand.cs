namespace Qmoe.Numerics;

/// <summary>
/// One GEMM input as the packing routines read it: a row-major matrix of f32 (or bf16, <see cref="Bf16"/>) with
/// leading dimension <see cref="Ld"/>, used as stored or transposed.
/// </summary>
internal readonly unsafe struct GemmOperand(void* data, int ld, bool transposed, bool bf16)
{
    public readonly void* Data = data;
    public readonly int Ld = ld;
    public readonly bool Transposed = transposed;
    public readonly bool Bf16 = bf16;

    /// <summary>Element (row, col) of op(M) widened to f32.</summary>
    public float this[int row, int col]
    {
        get
        {
            long idx = Transposed ? (long)col * Ld + row : (long)row * Ld + col;
            return Bf16 ? IO.BFloat16.ToFloat(((ushort*)Data)[idx]) : ((float*)Data)[idx];
        }
    }
}
