using Qmoe.IO;
using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

public class CompressedMatVecTests
{
    private static readonly TestDict16 Dict = TestDict16.Default;
    private static readonly DecodeTable Table = DecodeTable.FromDictionary(Dict.Dictionary);
    private static readonly ScalarCompressedMatVec Reference = new(Dict.Dictionary);

    /// <summary>Every CPU kernel variant this machine can run: each instruction-set path on one thread, the best on two.</summary>
    public static IEnumerable<(KernelIsa, int)> Variants()
    {
        yield return (KernelIsas.Best, 2);
        foreach (var isa in KernelIsas.Supported()) yield return (isa, 1);
    }

    /// <summary><see cref="Variants"/>, each with 4 and with 5 slots per table entry; and where <see cref="PositionRows"/> runs
    /// (AVX-512 VBMI), AVX-512 with it switched off too, so that the window loop is tested on the same short rows.</summary>
    private static IEnumerable<(KernelIsa Isa, int Threads, int Slots, bool Positions)> SlotVariants() =>
        Variants().SelectMany(v => new[] { (v.Item1, v.Item2, 4, true), (v.Item1, v.Item2, 5, true) })
            .Concat(PositionRows.IsSupported && KernelIsas.Supported().Contains(KernelIsa.Avx512) ? [(KernelIsa.Avx512, 1, 4, false), (KernelIsa.Avx512, 2, 5, false)] : []);

    internal sealed record Case(int Rows, int Cols, byte[] Trits, ushort[] Codes, int[] RowOffsets, ushort[] Scales)
    {
        public CompressedMatrix Matrix => new(Codes, RowOffsets, Scales, Rows, Cols);
    }

    internal static Case Make(Random rnd, int rows, int cols, byte[] trits, bool padTail = false)
    {
        var (codes, offsets) = Dict.Encode(trits, rows, cols, padTail ? rnd : null);
        return new Case(rows, cols, trits, codes, offsets, TestDict16.RandomScales(rnd, rows));
    }

    internal static float[] RandomVector(Random rnd, int n)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float)(rnd.NextDouble() * 2 - 1);
        return x;
    }

    /// <summary>‖y − ref‖∞ / ‖ref‖∞ ≤ 1e-5 (all-zero ref: y must be zero).</summary>
    internal static void AssertClose(float[] reference, float[] y)
    {
        double maxRef = 0, maxErr = 0;
        for (int i = 0; i < y.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(reference[i]));
            maxErr = Math.Max(maxErr, Math.Abs(reference[i] - (double)y[i]));
        }
        Assert.True(maxErr <= 1e-5 * maxRef, $"relative error {maxErr / maxRef:E2} (max |ref| {maxRef})");
    }

    /// <summary>Reference vs dense: y = W x with W dequantized from the trits, in double.</summary>
    private static float[] Dense(Case c, float[] x, int batch)
    {
        var y = new float[batch * c.Rows];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < c.Rows; r++)
            {
                double s = 0;
                for (int j = 0; j < c.Cols; j++)
                {
                    int t = c.Trits[r * c.Cols + j];
                    if (t != 0) s += BFloat16.ToFloat(c.Scales[2 * r + t - 1]) * (double)x[b * c.Cols + j];
                }
                y[b * c.Rows + r] = (float)s;
            }
        return y;
    }

    private static void CheckAll(Case c, Random rnd, int batch)
    {
        var x = RandomVector(rnd, batch * c.Cols);
        var yRef = new float[batch * c.Rows];
        Reference.Multiply(c.Matrix, x, yRef, batch);
        AssertClose(Dense(c, x, batch), yRef);
        foreach (var (path, threads, slots, positions) in SlotVariants())
        {
            using var parallel = new RowParallel(threads);
            var kernel = new SimdCompressedMatVec(Table, parallel, path, slots, positions);
            var y = new float[batch * c.Rows];
            kernel.Multiply(c.Matrix, x, y, batch);
            AssertClose(yRef, y);
            kernel.Multiply(c.Matrix, x, y, batch); // workspace reuse
            AssertClose(yRef, y);
            using (BatchInvariance.Enter()) kernel.Multiply(c.Matrix, x, y, batch); // AVX2/AVX-512: windows for every vector
            AssertClose(yRef, y);
        }
    }

    [Fact]
    public void BatchInvariantCallsGiveEachVectorItsBatchOneResultBitwise()
    {
        var rnd = new Random(7);
        var trits = TestDict16.RandomTrits(rnd, 45, 301, 0.885, 0.5, 0.0);
        var c = Make(rnd, 45, 301, trits, padTail: true);
        var x = RandomVector(rnd, ICompressedMatVec.MaxBatch * c.Cols);
        foreach (var (path, threads, slots, positions) in SlotVariants())
        {
            using var parallel = new RowParallel(threads);
            var kernel = new SimdCompressedMatVec(Table, parallel, path, slots, positions);
            var alone = new float[ICompressedMatVec.MaxBatch * c.Rows];
            for (int b = 0; b < ICompressedMatVec.MaxBatch; b++)
                kernel.Multiply(c.Matrix, x.AsSpan(b * c.Cols, c.Cols), alone.AsSpan(b * c.Rows, c.Rows), 1);
            for (int batch = 2; batch <= ICompressedMatVec.MaxBatch; batch++)
            {
                var y = new float[batch * c.Rows];
                using (BatchInvariance.Enter()) kernel.Multiply(c.Matrix, x.AsSpan(0, batch * c.Cols), y, batch);
                Assert.True(alone.AsSpan(0, batch * c.Rows).SequenceEqual(y), $"{path}, {threads} thread(s), {slots} slots, position windows {positions}, batch {batch}: a vector's result differs from its batch-1 result");
            }
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(1, 29)]
    [InlineData(3, 7)]
    [InlineData(17, 33)]
    [InlineData(64, 128)]
    [InlineData(33, 301)]
    [InlineData(200, 57)]
    [InlineData(5, 1001)]
    public void RandomMatricesMatchTheReference(int rows, int cols)
    {
        var rnd = new Random(rows * 1000 + cols);
        var trits = TestDict16.RandomTrits(rnd, rows, cols, 0.885, 0.5, 0.95, 1.0, 0.0);
        CheckAll(Make(rnd, rows, cols, trits), rnd, 1);
        CheckAll(Make(rnd, rows, cols, trits, padTail: true), rnd, rows % 2 == 0 ? 8 : 3);
    }

    [Fact]
    public void EveryBatchSizeOnEveryPathMatchesTheReference()
    {
        // Batches 1..8 (lane counts 1, 2, 4, 8 with padding lanes for 3, 5..7) on a dense-ish mix, so codewords with
        // more nonzeros than the table's slots (the test dictionary has entries with up to 8) take the overflow path.
        var rnd = new Random(99);
        var trits = TestDict16.RandomTrits(rnd, 37, 203, 0.885, 0.5, 0.0);
        var c = Make(rnd, 37, 203, trits, padTail: true);
        for (int batch = 1; batch <= ICompressedMatVec.MaxBatch; batch++) CheckAll(c, rnd, batch);
    }

    [Fact]
    public void ConcurrentCallsOnOneInstanceMatchTheReference()
    {
        // One kernel instance (one worker pool) called from four threads at once: no call sees another's operands.
        var rnd = new Random(12);
        var cases = Enumerable.Range(0, 4).Select(i => Make(rnd, 64 + 16 * i, 300 - 40 * i, TestDict16.RandomTrits(rnd, 64 + 16 * i, 300 - 40 * i, 0.885))).ToArray();
        var xs = cases.Select((c, i) => RandomVector(rnd, (1 + i) * c.Cols)).ToArray();
        var refs = cases.Select((c, i) => { var y = new float[(1 + i) * c.Rows]; Reference.Multiply(c.Matrix, xs[i], y, 1 + i); return y; }).ToArray();
        using var parallel = new RowParallel(2);
        var kernel = new SimdCompressedMatVec(Table, parallel);
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var y = new float[refs[i].Length];
            for (int rep = 0; rep < 50; rep++)
            {
                kernel.Multiply(cases[i].Matrix, xs[i], y, 1 + i);
                AssertClose(refs[i], y);
            }
        });
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public void NonzeroTableListsEveryNonzeroOnce(int slots)
    {
        var table = NonzeroTable.From(Table, slots);
        Assert.Equal(slots, table.Slots);
        int overflowing = 0;
        for (int c = 0; c < DecodeTable.Size; c++)
        {
            ulong d = Table.Entries[c], e = table.Entries[c];
            int weights = (int)(d >> DecodeTable.LengthShift);
            var expected = Enumerable.Range(0, weights).Where(k => ((d >> (2 * k)) & 3) != 0).Select(k => NonzeroTable.Slot(k, (int)((d >> (2 * k)) & 3))).ToList();
            int extra = (int)(e >> (8 * NonzeroTable.ExtraByte));
            int count = Math.Min(expected.Count, slots) + extra;
            Assert.Equal(Math.Max(0, expected.Count - slots), extra);
            Assert.Equal(3 * weights, (int)((e >> (8 * NonzeroTable.AdvanceByte)) & 0xFF));
            var listed = Enumerable.Range(0, Math.Min(count, slots)).Select(i => (byte)(e >> (8 * i)))
                .Concat(table.Overflow.Skip(table.OverflowStart[c]).Take(extra)).ToList();
            Assert.Equal(expected, listed);
            for (int i = Math.Min(count, slots); i < NonzeroTable.MaxSlots; i++) Assert.Equal(NonzeroTable.Empty, (byte)(e >> (8 * i)));
            if (extra > 0) overflowing++;
        }
        Assert.True(overflowing > 0, "the test dictionary should exercise the overflow slots");
    }

    [Fact]
    public void FiveSlotsArePreferredWhenManyCodewordsHoldMoreThanFourNonzeros()
    {
        static int Nonzeros(ulong d) => Enumerable.Range(0, (int)(d >> DecodeTable.LengthShift)).Count(k => ((d >> (2 * k)) & 3) != 0);
        var many = Enumerable.Range(0, DecodeTable.Size).Where(c => Nonzeros(Table.Entries[c]) > 4).Select(c => (ushort)c).ToArray();
        var few = Enumerable.Range(0, DecodeTable.Size).Where(c => Nonzeros(Table.Entries[c]) <= 4).Select(c => (ushort)c).ToArray();
        Assert.NotEmpty(many);
        ushort[] Mix(int perHundred) => Enumerable.Range(0, 10_000).Select(i => i % 100 < perHundred ? many[i % many.Length] : few[i % few.Length]).ToArray();
        static int Preferred(ushort[] sample) => NonzeroTable.PreferredSlots(NonzeroTable.CountDense(Table, sample), sample.Length);
        Assert.Equal(300, NonzeroTable.CountDense(Table, Mix(3)));
        Assert.Equal(4, Preferred(Mix(0)));
        Assert.Equal(4, Preferred(Mix(3)));
        Assert.Equal(5, Preferred(Mix(8)));
        Assert.Equal(5, Preferred(Mix(100)));
        Assert.Equal(4, Preferred([]));
    }

    [Fact]
    public void AllZeroAndMaximallyDenseRows()
    {
        var rnd = new Random(7);
        int rows = 6, cols = 95;
        var trits = new byte[rows * cols];
        for (int j = 0; j < cols; j++)
        {
            trits[1 * cols + j] = 1;                       // all min
            trits[2 * cols + j] = 2;                       // all max
            trits[3 * cols + j] = (byte)(1 + rnd.Next(2)); // no zero at all
            trits[5 * cols + j] = (byte)(1 + j % 2);
        }
        CheckAll(Make(rnd, rows, cols, trits), rnd, 1);
        CheckAll(Make(rnd, rows, cols, trits, padTail: true), rnd, 2);
    }

    [Fact]
    public void RealExpertsTernarizedMatchTheReference()
    {
        using var model = SafeTensorsFile.Open(Path.Combine(Paths.TinyModel, "model.safetensors"));
        var rnd = new Random(3);
        foreach (var name in new[] { "encoder.block.1.layer.1.mlp.experts.expert_0.wi.weight", "decoder.block.1.layer.2.mlp.experts.expert_5.wo.weight" })
        {
            var info = model.Tensors[name];
            int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
            var (trits, scales) = ThresholdTernary.Ternarize(model.ReadFloat32(name), rows, cols, 0.85);
            var (codes, offsets) = Dict.Encode(trits, rows, cols);
            CheckAll(new Case(rows, cols, trits, codes, offsets, scales), rnd, 1);
        }
    }

    [Fact]
    public void CodecDefaultDictionaryOnEveryTinyExpert()
    {
        // The codec's default dictionary and encoder, on every expert matrix of the embedded model.
        var dict = Qmoe.Codec.CodeDictionary.Default;
        var reference = new ScalarCompressedMatVec(dict.Entries);
        var table = DecodeTable.FromDictionary(dict.Entries);
        using var parallel = new RowParallel(2);
        var kernel = new SimdCompressedMatVec(table, parallel);
        var rnd = new Random(11);
        int matrices = 0;
        foreach (var (_, rows, cols, trits, scales, codes, offsets) in ThresholdTernary.TinyExperts())
        {
            var c = new Case(rows, cols, trits, codes, offsets, scales);
            int batch = 1 + matrices % 4;
            var x = RandomVector(rnd, batch * cols);
            var yRef = new float[batch * rows];
            reference.Multiply(c.Matrix, x, yRef, batch);
            AssertClose(Dense(c, x, batch), yRef);
            var y = new float[batch * rows];
            kernel.Multiply(c.Matrix, x, y, batch);
            AssertClose(yRef, y);
            matrices++;
        }
        Assert.Equal(32, matrices);
    }

    [FixtureFact("references", "switch-small-32", "hessian_inputs.safetensors")]
    public void SwitchSmall32ExpertTernarizedWithRealInputs()
    {
        // A larger trained expert and its real routed inputs X (rows of X are tokens: a batch of 8 of them).
        using var file = SafeTensorsFile.Open(Paths.Fixture("references", "switch-small-32", "hessian_inputs.safetensors")!);
        var dict = Qmoe.Codec.CodeDictionary.Default;
        var reference = new ScalarCompressedMatVec(dict.Entries);
        using var parallel = new RowParallel(2);
        var kernel = new SimdCompressedMatVec(DecodeTable.FromDictionary(dict.Entries), parallel);
        var tokens = file.ReadFloat32("X");
        foreach (var name in new[] { "wi", "wo" })
        {
            var info = file.Tensors[name];
            int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
            var (trits, scales) = ThresholdTernary.Ternarize(file.ReadFloat32(name), rows, cols, 0.885);
            var m = Qmoe.Codec.TernaryEncoder.Encode(trits, rows, cols, dict, threads: 1);
            var w = new CompressedMatrix(m.Codes, m.RowOffsets, scales, rows, cols);
            // wi takes the routed tokens; wo (cols = d_ff) takes a ReLU'd wi output stand-in of the right width.
            int batch = ICompressedMatVec.MaxBatch;
            var x = name == "wi" ? tokens.AsSpan(0, batch * cols).ToArray()
                : RandomVector(new Random(2), batch * cols).Select(v => Math.Max(v, 0f)).ToArray();
            var yRef = new float[batch * rows]; var y = new float[batch * rows];
            reference.Multiply(w, x, yRef, batch);
            kernel.Multiply(w, x, y, batch);
            AssertClose(yRef, y);
        }
    }

    private sealed class PositionRowsFactAttribute : FactAttribute
    {
        public PositionRowsFactAttribute()
        {
            if (!PositionRows.IsSupported) Skip = "PositionRows needs AVX-512 VBMI, which this machine (or DOTNET_Enable* settings) lacks";
        }
    }

    /// <summary>
    /// <see cref="PositionRows"/> called directly, 1–8 vectors, on rows whose last codewords reach past the row end with
    /// random trits and at every width class (under one window pair, a whole number of pairs, a partial last pair, the
    /// widest it takes): each vector within rounding of the reference, and bitwise its one-vector result.
    /// </summary>
    [PositionRowsFact]
    public unsafe void PositionRowsMatchTheReference()
    {
        foreach (int cols in new[] { 5, 32, 203, PositionRows.MaxCols })
        {
            var rnd = new Random(cols);
            var c = Make(rnd, 23, cols, TestDict16.RandomTrits(rnd, 23, cols, 0.885, 0.5, 0.0), padTail: true);
            int stride = (cols + WindowRows.Padding + 15) / 16 * 16;
            var xs = RandomVector(rnd, 8 * cols);
            var padded = new float[8 * stride];
            for (int v = 0; v < 8; v++) xs.AsSpan(v * cols, cols).CopyTo(padded.AsSpan(v * stride));
            var yRef = new float[8 * c.Rows];
            Reference.Multiply(c.Matrix, xs, yRef, 8);
            var alone = new float[8 * c.Rows];
            fixed (ulong* table = Table.Entries) fixed (ushort* codes = c.Codes) fixed (int* offsets = c.RowOffsets) fixed (ushort* scales = c.Scales)
            fixed (float* x = padded) fixed (float* a = alone)
            {
                for (int v = 0; v < 8; v++)
                    PositionRows.Rows512<OneVector>(table, codes, offsets, new RowLevels(scales, null), 0, c.Rows, cols, x + v * stride, stride, a + v * c.Rows, c.Rows);
                AssertClose(yRef, alone);
                for (int n = 2; n <= 8; n++)
                {
                    var y = new float[n * c.Rows];
                    fixed (float* yp = y) PositionRows.Rows512(n, table, codes, offsets, new RowLevels(scales, null), 0, c.Rows, cols, x, stride, yp, c.Rows);
                    Assert.True(alone.AsSpan(0, n * c.Rows).SequenceEqual(y), $"{cols} columns, {n} vectors: differs from one vector at a time");
                }
                // A sub-range of rows writes those rows only.
                var part = new float[c.Rows];
                fixed (float* p = part) PositionRows.Rows512<OneVector>(table, codes, offsets, new RowLevels(scales, null), 7, 12, cols, x, stride, p, c.Rows);
                for (int r = 0; r < c.Rows; r++) Assert.Equal(r is >= 7 and < 12 ? alone[r] : 0f, part[r]);
            }
        }
    }

    [Fact]
    public void MalformedMatricesAreRefused()
    {
        var rnd = new Random(5);
        var c = Make(rnd, 4, 40, TestDict16.RandomTrits(rnd, 4, 40, 0.885));
        var x = new float[40]; var y = new float[4];
        using var parallel = new RowParallel(2);
        ICompressedMatVec[] kernels = [Reference, new SimdCompressedMatVec(Table, parallel), new SimdCompressedMatVec(Table, parallel, positionWindows: false)];
        foreach (var k in kernels)
        {
            // A row missing its last codeword, then one with an extra codeword.
            var shortRow = c with { Codes = c.Codes.Where((_, i) => i != c.RowOffsets[2] - 1).ToArray(), RowOffsets = c.RowOffsets.Select((o, r) => r >= 2 ? o - 1 : o).ToArray() };
            var e = Assert.Throws<QmoeException>(() => k.Multiply(shortRow.Matrix, x, y));
            Assert.Contains("row 1", e.Message);
            var zeros = Enumerable.Repeat(Dict.Encode(new byte[28], 1, 28).Codes[0], 1).ToArray(); // 28 zero weights
            var longRow = c with { Codes = [.. c.Codes[..c.RowOffsets[3]], .. zeros, .. c.Codes[c.RowOffsets[3]..]], RowOffsets = c.RowOffsets.Select((o, r) => r >= 3 ? o + 1 : o).ToArray() };
            e = Assert.Throws<QmoeException>(() => k.Multiply(longRow.Matrix, x, y));
            Assert.Contains("row 2", e.Message);
            var badOffsets = c with { RowOffsets = [0, 5, 3, 9, c.Codes.Length] };
            Assert.Throws<QmoeException>(() => k.Multiply(badOffsets.Matrix, x, y));
            var pastEnd = c with { RowOffsets = [0, 1, 2, 3, c.Codes.Length + 1] };
            Assert.Throws<QmoeException>(() => k.Multiply(pastEnd.Matrix, x, y));
            // A garbage stream: long zero runs make every row overshoot; must be refused, not read out of bounds.
            var overshoot = c with { Codes = Enumerable.Repeat(zeros[0], c.Codes.Length).ToArray() };
            Assert.Throws<QmoeException>(() => k.Multiply(overshoot.Matrix, x, y));
        }
    }

    [Fact]
    public void BadDictionariesAreRefused()
    {
        var d = (uint[])Dict.Dictionary.Clone();
        d[2 * 77] &= ~15u; // length 0
        Assert.Throws<QmoeException>(() => DecodeTable.FromDictionary(d));
        d = (uint[])Dict.Dictionary.Clone();
        d[2 * 77] |= 3u << 4; // trit value 3
        Assert.Throws<QmoeException>(() => DecodeTable.FromDictionary(d));
        Assert.Throws<QmoeException>(() => DecodeTable.FromDictionary(d.AsSpan(0, 100)));
    }
}
