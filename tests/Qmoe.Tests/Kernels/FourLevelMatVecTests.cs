using Qmoe.Codec;
using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

/// <summary>
/// Coded 2-bit matrices (docs/FORMAT.md, "Coded 2-bit experts"): four-level symbols coded with a four-level dictionary,
/// each row's 2-bit grid (scale, zero point) giving its level per symbol. The scalar reference against a dense double
/// product, and every kernel path (each instruction set, one and two threads, position windows on and off, batches 1–8,
/// batch-invariant calls, the row decoder) against the reference.
/// </summary>
public class FourLevelMatVecTests
{
    // 2-bit GPTQ's symbol statistics (docs/FORMAT.md): 60% the zero level, 19% one step either way, 1% the far level.
    private static readonly double[] SymbolP = [0.603, 0.193, 0.010, 0.194];
    private static readonly CodeDictionary Dict = BuildDictionary();
    private static readonly DecodeTable Table = DecodeTable.FromDictionary(Dict.Entries, levels: 4);
    private static readonly ScalarCompressedMatVec Reference = new(Dict.Entries, levels: 4);

    private static CodeDictionary BuildDictionary()
    {
        var counts = new long[16];
        for (int s = 0; s < 16; s++) counts[s] = (long)(1e6 * SymbolP[s % 4] * SymbolP[s / 4]);
        return CodeDictionary.Build(PairModel.Fit(counts), "test four-level");
    }

    internal sealed record Case(int Rows, int Cols, byte[] Symbols, ushort[] Codes, int[] RowOffsets, float[] GridScales, byte[] GridZeros)
    {
        public CompressedMatrix Matrix => new(Codes, RowOffsets, GridScales, GridZeros, Rows, Cols);
        /// <summary>Symbol t of row r: grid code (t + zero) mod 4, worth scale · (code − zero).</summary>
        public double Level(int r, int t) => GridScales[r] * (double)(((t + GridZeros[r]) & 3) - GridZeros[r]);
    }

    internal static Case Make(Random rnd, int rows, int cols)
    {
        var symbols = new byte[rows * cols];
        for (int i = 0; i < symbols.Length; i++)
        {
            double u = rnd.NextDouble();
            symbols[i] = (byte)(u < SymbolP[0] ? 0 : u < SymbolP[0] + SymbolP[1] ? 1 : u < 1 - SymbolP[3] ? 2 : 3);
        }
        var enc = TernaryEncoder.Encode(symbols, rows, cols, Dict, threads: 1);
        var scales = Enumerable.Range(0, rows).Select(_ => (float)(0.01 + 0.1 * rnd.NextDouble())).ToArray();
        var zeros = Enumerable.Range(0, rows).Select(_ => (byte)rnd.Next(4)).ToArray();
        return new Case(rows, cols, symbols, enc.Codes, enc.RowOffsets, scales, zeros);
    }

    private static float[] Dense(Case c, float[] x, int batch)
    {
        var y = new float[batch * c.Rows];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < c.Rows; r++)
            {
                double s = 0;
                for (int j = 0; j < c.Cols; j++) s += c.Level(r, c.Symbols[r * c.Cols + j]) * x[b * c.Cols + j];
                y[b * c.Rows + r] = (float)s;
            }
        return y;
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(17, 32)]
    [InlineData(23, 203)]
    [InlineData(9, 768)]
    [InlineData(5, 1500)]
    public void EveryPathMatchesTheReference(int rows, int cols)
    {
        var rnd = new Random(rows * 1000 + cols);
        var c = Make(rnd, rows, cols);
        for (int r = 0; r < rows; r++) Assert.Equal(0.0, c.Level(r, 0)); // symbol 0 is the zero level
        foreach (int batch in new[] { 1, 2, 3, 5, 8 })
        {
            var x = CompressedMatVecTests.RandomVector(rnd, batch * cols);
            var yRef = new float[batch * rows];
            Reference.Multiply(c.Matrix, x, yRef, batch);
            CompressedMatVecTests.AssertClose(Dense(c, x, batch), yRef);
            foreach (var (isa, threads) in CompressedMatVecTests.Variants())
                foreach (bool positions in new[] { true, false })
                {
                    using var parallel = new RowParallel(threads);
                    var kernel = new SimdCompressedMatVec(Table, parallel, isa, positionWindows: positions);
                    var y = new float[batch * rows];
                    kernel.Multiply(c.Matrix, x, y, batch);
                    CompressedMatVecTests.AssertClose(yRef, y);
                    var alone = new float[batch * rows];
                    for (int b = 0; b < batch; b++) kernel.Multiply(c.Matrix, x.AsSpan(b * cols, cols), alone.AsSpan(b * rows, rows), 1);
                    using (BatchInvariance.Enter()) kernel.Multiply(c.Matrix, x, y, batch);
                    Assert.True(alone.AsSpan().SequenceEqual(y), $"{isa}, {threads} thread(s), positions {positions}, batch {batch}: not each vector's batch-1 result");
                }
        }
        // The row decoder: exactly each row's level per symbol.
        foreach (var isa in KernelIsas.Supported())
        {
            var dst = new float[rows * cols + TernaryRowDecoder.Padding];
            new TernaryRowDecoder(Table, isa).Decode(c.Matrix, 0, rows, dst);
            for (int i = 0; i < rows * cols; i++) Assert.Equal((float)c.Level(i / cols, c.Symbols[i]), dst[i]);
        }
    }

    [Fact]
    public void MalformedRowsAreRefusedOnEveryPath()
    {
        var c = Make(new Random(7), 4, 60);
        // A row missing its last codeword; a stream of the longest codeword, so that every row overshoots.
        var shortRow = c with { Codes = c.Codes.Where((_, i) => i != c.RowOffsets[2] - 1).ToArray(), RowOffsets = c.RowOffsets.Select((o, r) => r >= 2 ? o - 1 : o).ToArray() };
        ushort longest = (ushort)Enumerable.Range(0, DecodeTable.Size).MaxBy(code => Table.Entries[code] >> DecodeTable.LengthShift);
        var overshoot = c with { Codes = Enumerable.Repeat(longest, c.Codes.Length).ToArray() };
        var x = new float[60]; var y = new float[4];
        foreach (var (isa, threads) in CompressedMatVecTests.Variants())
        {
            using var parallel = new RowParallel(threads);
            var kernel = new SimdCompressedMatVec(Table, parallel, isa);
            Assert.Contains("row 1", Assert.Throws<QmoeException>(() => kernel.Multiply(shortRow.Matrix, x, y)).Message);
            Assert.Throws<QmoeException>(() => kernel.Multiply(overshoot.Matrix, x, y));
        }
    }

    [Fact]
    public void KernelsRefuseAMatrixOfTheOtherKind()
    {
        var c = Make(new Random(3), 4, 40);
        var ternaryTable = DecodeTable.FromDictionary(CodeDictionary.Default.Entries);
        using var parallel = new RowParallel(1);
        var y = new float[4];
        var e = Assert.Throws<ArgumentException>(() => new SimdCompressedMatVec(ternaryTable, parallel).Multiply(c.Matrix, new float[40], y));
        Assert.Contains("four-level dictionary", e.Message);
        Assert.Throws<ArgumentException>(() => new ScalarCompressedMatVec(CodeDictionary.Default.Entries).Multiply(c.Matrix, new float[40], y));
        Assert.Throws<ArgumentException>(() => new TernaryRowDecoder(ternaryTable).Decode(c.Matrix, 0, 4, new float[4 * 40 + TernaryRowDecoder.Padding]));
        // A four-level dictionary is refused where three levels are expected.
        Assert.Throws<QmoeException>(() => DecodeTable.FromDictionary(Dict.Entries));
    }

    [Fact]
    public void FourLevelCodesRoundTrip()
    {
        var rnd = new Random(11);
        var c = Make(rnd, 13, 77);
        Assert.Equal(4, Dict.Levels);
        // Decoding the codes through the dictionary gives the symbols back (padding past the row end ignored).
        for (int r = 0; r < c.Rows; r++)
        {
            int pos = 0;
            for (int i = c.RowOffsets[r]; i < c.RowOffsets[r + 1]; i++)
                for (int k = 0; k < 2 * Dict.PairCount(c.Codes[i]); k++, pos++)
                    if (pos < c.Cols) Assert.Equal(c.Symbols[r * c.Cols + pos], (byte)Dict.Trit(c.Codes[i], k));
            Assert.True(pos >= c.Cols && pos < c.Cols + 2);
        }
        // The code is shorter than plain 2-bit packing at these statistics.
        Assert.True(2.0 * c.Codes.Length < c.Rows * c.Cols * 2 / 8.0, $"{c.Codes.Length} codes for {c.Rows * c.Cols} symbols");
        // Symbols above 3 are refused by name.
        var bad = new byte[10]; bad[4] = 4;
        Assert.Contains("not below 4", Assert.Throws<QmoeException>(() => TernaryEncoder.Encode(bad, 1, 10, Dict)).Message);
    }
}
