namespace Qmoe.Kernels;

/// <summary>
/// One dict16-coded ternary matrix W [Rows, Cols] (SPEC §5), as zero-copy views straight into the file:
/// <see cref="Codes"/> the expert's codewords, <see cref="RowOffsets"/> [Rows + 1] (row r is
/// Codes[RowOffsets[r] .. RowOffsets[r+1]]), <see cref="Scales"/> bf16 [Rows, 2] = (min, max) per row.
/// Weight (r, j) is 0, min_r or max_r as its trit is 0, 1 or 2. A coded 2-bit matrix (docs/FORMAT.md, "Coded 2-bit
/// experts") has a 2-bit grid per row instead (<see cref="GridScales"/>, <see cref="GridZeros"/>) and its codes index a
/// four-level dictionary: symbol t of row r is grid code q = (t + zero_r) mod 4, worth scale_r · (q − zero_r), so
/// symbol 0 is the zero level.
/// </summary>
public readonly ref struct CompressedMatrix
{
    public readonly ReadOnlySpan<ushort> Codes;
    public readonly ReadOnlySpan<int> RowOffsets;
    public readonly ReadOnlySpan<ushort> Scales;
    /// <summary>Coded 2-bit matrices: the grid's scale per row, f32 [Rows]; empty for ternary.</summary>
    public readonly ReadOnlySpan<float> GridScales;
    /// <summary>Coded 2-bit matrices: the grid's zero point per row (0..3), u8 [Rows].</summary>
    public readonly ReadOnlySpan<byte> GridZeros;
    public readonly int Rows;
    public readonly int Cols;

    public CompressedMatrix(ReadOnlySpan<ushort> codes, ReadOnlySpan<int> rowOffsets, ReadOnlySpan<ushort> scales, int rows, int cols)
    {
        Codes = codes; RowOffsets = rowOffsets; Scales = scales; Rows = rows; Cols = cols;
    }

    /// <summary>A coded 2-bit matrix: symbol t of row r is worth gridScales[r] · (((t + gridZeros[r]) mod 4) − gridZeros[r]).</summary>
    public CompressedMatrix(ReadOnlySpan<ushort> codes, ReadOnlySpan<int> rowOffsets, ReadOnlySpan<float> gridScales, ReadOnlySpan<byte> gridZeros,
        int rows, int cols)
    {
        Codes = codes; RowOffsets = rowOffsets; GridScales = gridScales; GridZeros = gridZeros; Rows = rows; Cols = cols;
    }

    /// <summary>Symbols per weight of the dictionary the codes index: 3 (ternary) or 4 (coded 2-bit).</summary>
    public int LevelCount => GridScales.IsEmpty ? 3 : 4;

    /// <summary>The value of symbol <paramref name="t"/> (0..3) in a 2-bit grid row of scale and zero point: what the
    /// kernels compute, and <c>--fake-quant</c>'s value of grid code (t + zero) mod 4.</summary>
    public static float GridLevel(float scale, int zero, int t) => scale * (((t + zero) & 3) - zero);

    public long Weights => (long)Rows * Cols;

    /// <summary>
    /// Checks the shapes and that the row offsets are monotone and inside <see cref="Codes"/> (O(Rows), done by
    /// every kernel call). Whether each row decodes to exactly Cols weights is checked while decoding.
    /// </summary>
    public void Validate() => Validate(0, Rows);

    /// <summary>As <see cref="Validate()"/> for rows [r0, r1) only (their offsets r0..r1): O(r1 − r0).</summary>
    public void Validate(int r0, int r1)
    {
        if (Rows <= 0 || Cols <= 0) throw new QmoeException($"compressed matrix: bad shape [{Rows}, {Cols}]");
        if (RowOffsets.Length != Rows + 1)
            throw new QmoeException($"compressed matrix: row_offsets has {RowOffsets.Length} entries, expected rows + 1 = {Rows + 1}");
        if (GridScales.IsEmpty && Scales.Length != 2 * Rows)
            throw new QmoeException($"compressed matrix: scales has {Scales.Length} entries, expected 2 * rows = {2 * Rows}");
        if (!GridScales.IsEmpty && (GridScales.Length != Rows || GridZeros.Length != Rows))
            throw new QmoeException($"compressed matrix: {GridScales.Length} grid scales and {GridZeros.Length} zero points, expected rows = {Rows} each");
        if (r0 < 0 || r1 > Rows || r0 > r1) throw new ArgumentOutOfRangeException(nameof(r0), $"rows [{r0}, {r1}) outside [0, {Rows})");
        int prev = RowOffsets[r0];
        if (prev < 0) throw new QmoeException($"compressed matrix: row_offsets[{r0}] = {prev} is negative");
        for (int r = r0 + 1; r <= r1; r++)
        {
            int o = RowOffsets[r];
            if (o <= prev)
                throw new QmoeException($"compressed matrix: row_offsets not increasing at row {r - 1} ({prev} -> {o}); every row holds at least one codeword");
            prev = o;
        }
        if (prev > Codes.Length)
            throw new QmoeException($"compressed matrix: row_offsets end at {prev}, beyond the {Codes.Length} codewords");
    }

    /// <summary>Checks the operand lengths of Y = W X: x [batch, Cols], y [batch, Rows], 1 ≤ batch ≤ MaxBatch.</summary>
    internal void CheckOperands(int xLength, int yLength, int batch)
    {
        if (batch < 1 || batch > ICompressedMatVec.MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(batch), batch, $"batch must be 1..{ICompressedMatVec.MaxBatch}");
        if (xLength != batch * Cols) throw new ArgumentException($"x has {xLength} values, expected batch * cols = {batch * Cols}");
        if (yLength != batch * Rows) throw new ArgumentException($"y has {yLength} values, expected batch * rows = {batch * Rows}");
    }

    /// <summary>The error for a kernel whose decode table has <paramref name="table"/> levels given a matrix of <paramref name="matrix"/>.</summary>
    internal static ArgumentException LevelMismatch(int table, int matrix) =>
        new($"the kernel's decode table has {table} levels per symbol, the matrix {matrix} (a coded 2-bit matrix needs its four-level dictionary)");

    /// <summary>The error for row <paramref name="row"/> decoding to <paramref name="weights"/> weights instead of Cols (+ padding &lt; 28).</summary>
    internal static QmoeException RowLengthError(int row, long weights, int cols) =>
        new($"compressed matrix: row {row} decodes to {weights} weights, expected {cols} (plus at most 27 of padding)");
}
