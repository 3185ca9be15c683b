using System.Runtime.Intrinsics;

namespace Qmoe.Kernels;

/// <summary>
/// Rows of a dict16-coded ternary (or coded 2-bit) matrix as dense f32, for products of many input rows with a small matrix
/// (<see cref="Runtime.CompressedWeight.Decodes"/>): one decode, about the cost of a batch-1 kernel call, then the
/// GEMM, where the fused kernel redoes the decode for every 8 rows. Values are exactly 0, min and max of the row (what the kernels multiply),
/// so every path's output is bitwise the <see cref="Codec.TernaryDecoder"/> reference's. Paths: AVX-512 and AVX2
/// store <see cref="WindowRows"/>' decoded windows; other ISAs walk the table entries weight by weight. Stateless
/// and reentrant.
/// </summary>
public sealed unsafe class TernaryRowDecoder
{
    /// <summary>Floats a destination holds past its last row: a row's last windows reach past its end.</summary>
    public const int Padding = WindowRows.Padding;

    private readonly DecodeTable _table;

    /// <summary>The instruction-set path this instance runs.</summary>
    public KernelIsa Isa { get; }

    /// <param name="table">the model's decode table</param>
    /// <param name="isa">the instruction-set path to force; null: the best this CPU runs</param>
    public TernaryRowDecoder(DecodeTable table, KernelIsa? isa = null)
    {
        _table = table;
        Isa = KernelIsas.OrBest(isa);
    }

    /// <summary>
    /// Rows [r0, r1) of <paramref name="w"/> into <paramref name="dst"/>, row r at (r − r0)·Cols; dst holds at least
    /// (r1 − r0)·Cols + <see cref="Padding"/> floats (what lies past the rows' end is scratch). Throws
    /// <see cref="QmoeException"/> on a malformed matrix, as the kernels do.
    /// </summary>
    public void Decode(in CompressedMatrix w, int r0, int r1, Span<float> dst)
    {
        w.Validate(r0, r1);
        if (dst.Length < (long)(r1 - r0) * w.Cols + Padding)
            throw new ArgumentException($"dst has {dst.Length} floats, needs (rows · cols) + {Padding} = {(long)(r1 - r0) * w.Cols + Padding}");
        if (_table.Levels != w.LevelCount) throw CompressedMatrix.LevelMismatch(_table.Levels, w.LevelCount);
        fixed (ulong* table = _table.Entries) fixed (ushort* codes = w.Codes) fixed (int* offsets = w.RowOffsets)
        fixed (ushort* scalesPtr = w.Scales) fixed (float* gridScales = w.GridScales) fixed (byte* gridZeros = w.GridZeros) fixed (float* d = dst)
        {
            var scales = new RowLevels(scalesPtr, gridScales, gridZeros);
            switch (Isa)
            {
                case KernelIsa.Avx512: WindowRows.DecodeRows512(table, codes, offsets, scales, r0, r1, w.Cols, d); break;
                case KernelIsa.Avx2: WindowRows.DecodeRows256(table, codes, offsets, scales, r0, r1, w.Cols, d); break;
                default: DecodeRowsScalar(table, codes, offsets, scales, r0, r1, w.Cols, d); break;
            }
        }
    }

    // One weight at a time from the entry's 2-bit trits; a codeword past the row end writes at most 27 floats past it.
    private static void DecodeRowsScalar(ulong* table, ushort* allCodes, int* rowOffsets, RowLevels scales, int r0, int r1, int cols, float* dst)
    {
        int limit = cols + DecodeTable.MaxWeights;
        float* levels = stackalloc float[4];
        for (int r = r0; r < r1; r++)
        {
            scales.Get(r).Store(levels);
            float* row = dst + (long)(r - r0) * cols;
            long pos = 0;
            for (ushort* c = allCodes + rowOffsets[r], end = allCodes + rowOffsets[r + 1]; c < end && pos < limit; c++)
            {
                ulong e = table[*c];
                int length = (int)(e >> DecodeTable.LengthShift);
                for (int k = 0; k < length && pos < limit; k++) row[pos++] = levels[(int)(e >> (2 * k)) & 3];
            }
            if (pos < cols || pos >= limit) throw CompressedMatrix.RowLengthError(r, pos, cols);
        }
    }
}
