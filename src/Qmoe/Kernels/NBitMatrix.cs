using Qmoe.Codec;

namespace Qmoe.Kernels;

/// <summary>
/// One bit-packed n-bit matrix W [Rows, Cols] (<see cref="PackedNBitMatrix"/> layout), as zero-copy views:
/// <see cref="Packed"/> [Rows · RowBytes] codes, <see cref="Scales"/> f32 [Rows], <see cref="Zeros"/> u8 [Rows];
/// weight (r, j) = Scales[r] · (code(r, j) − Zeros[r]).
/// </summary>
public readonly ref struct NBitMatrix
{
    public readonly ReadOnlySpan<byte> Packed;
    public readonly ReadOnlySpan<float> Scales;
    public readonly ReadOnlySpan<byte> Zeros;
    public readonly int Bits;
    public readonly int Rows;
    public readonly int Cols;

    public NBitMatrix(ReadOnlySpan<byte> packed, ReadOnlySpan<float> scales, ReadOnlySpan<byte> zeros, int bits, int rows, int cols)
    {
        Packed = packed; Scales = scales; Zeros = zeros; Bits = bits; Rows = rows; Cols = cols;
    }

    public NBitMatrix(PackedNBitMatrix m) : this(m.Packed, m.RowScales, m.RowZeros, m.Bits, m.Rows, m.Cols) { }

    public long RowBytes => PackedNBitMatrix.RowBytesOf(Bits, Cols);

    /// <summary>Checks the shapes (O(1)); codes of any bit pattern are valid, so nothing else can be malformed.</summary>
    public void Validate()
    {
        if (!PackedNBitMatrix.IsSupportedBits(Bits)) throw new QmoeException($"n-bit matrix: {Bits} bits (must be 2, 3 or 4)");
        if (Rows <= 0 || Cols <= 0) throw new QmoeException($"n-bit matrix: bad shape [{Rows}, {Cols}]");
        if (Packed.Length != Rows * RowBytes) throw new QmoeException($"n-bit matrix: {Packed.Length} packed bytes, expected {Rows * RowBytes}");
        if (Scales.Length != Rows || Zeros.Length != Rows) throw new QmoeException($"n-bit matrix: grids for {Scales.Length} / {Zeros.Length} rows, expected {Rows}");
    }

    /// <summary>Checks the operand lengths of Y = W X: x [batch, Cols], y [batch, Rows], 1 ≤ batch ≤ MaxBatch.</summary>
    internal void CheckOperands(int xLength, int yLength, int batch)
    {
        if (batch < 1 || batch > ICompressedMatVec.MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be 1..{ICompressedMatVec.MaxBatch}");
        if (xLength != batch * Cols) throw new ArgumentException($"x has {xLength} values, expected batch * cols = {batch * Cols}");
        if (yLength != batch * Rows) throw new ArgumentException($"y has {yLength} values, expected batch * rows = {batch * Rows}");
    }
}

/// <summary>Fused unpack + multiply on an n-bit matrix: Y = W X for up to <see cref="ICompressedMatVec.MaxBatch"/> vectors, never writing W.</summary>
public interface INBitMatVec
{
    /// <summary>x: [batch, w.Cols], y: [batch, w.Rows]; y[b, r] = Σ_j W[r, j] x[b, j].</summary>
    void Multiply(in NBitMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1);
}
