using Qmoe.Codec;
using Qmoe.Kernels;
using Qmoe.Quantization;
using Qmoe.Tests.Numerics;

namespace Qmoe.Tests.Kernels;

public class NBitMatVecTests
{
    private static readonly ScalarNBitMatVec Reference = new();

    internal static PackedNBitMatrix RandomMatrix(Random rnd, int bits, int rows, int cols)
    {
        var codes = new byte[rows * cols];
        for (int i = 0; i < codes.Length; i++) codes[i] = (byte)rnd.Next(1 << bits);
        var scales = new float[rows];
        var zeros = new byte[rows];
        for (int r = 0; r < rows; r++) { scales[r] = (float)(0.001 + rnd.NextDouble() * 0.1); zeros[r] = (byte)rnd.Next(1 << bits); }
        return new PackedNBitMatrix(bits, rows, cols, PackedNBitMatrix.Pack(codes, bits, rows, cols), scales, zeros);
    }

    /// <summary>‖y − ref‖∞ ≤ 1e-5 · ‖ref‖∞ (the SIMD kernel sums in f32 in another order and factors out the zero point).</summary>
    private static void AssertClose(float[] reference, float[] y)
    {
        double maxRef = 0, maxErr = 0;
        for (int i = 0; i < y.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(reference[i]));
            maxErr = Math.Max(maxErr, Math.Abs(reference[i] - (double)y[i]));
        }
        Assert.True(maxErr <= 1e-5 * maxRef, $"relative error {maxErr / maxRef:E2} (max |ref| {maxRef})");
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void PackRoundTripsEveryCode(int bits)
    {
        var rnd = new Random(bits);
        int rows = 5, cols = 37;
        var codes = new byte[rows * cols];
        for (int i = 0; i < codes.Length; i++) codes[i] = (byte)rnd.Next(1 << bits);
        var packed = PackedNBitMatrix.Pack(codes, bits, rows, cols);
        long rowBytes = PackedNBitMatrix.RowBytesOf(bits, cols);
        Assert.Equal(rows * ((cols * bits + 7) / 8), packed.Length);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
                Assert.Equal(codes[r * cols + j], PackedNBitMatrix.Code(packed.AsSpan((int)(r * rowBytes), (int)rowBytes), bits, j));
        Assert.Throws<ArgumentException>(() => PackedNBitMatrix.Pack([(byte)(1 << bits)], bits, 1, 1));
    }

    public static TheoryData<int, int, int, int> Shapes() => new()
    {
        { 2, 64, 768, 1 }, { 2, 33, 200, 3 }, { 3, 17, 384, 8 }, { 3, 40, 37, 1 }, { 4, 29, 192, 5 }, { 4, 8, 9, 2 }, { 2, 3, 7, 8 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void SimdMatchesScalarOnRandomData(int bits, int rows, int cols, int batch)
    {
        var rnd = new Random(rows * 31 + cols + bits);
        var m = RandomMatrix(rnd, bits, rows, cols);
        var x = CompressedMatVecTests.RandomVector(rnd, batch * cols);
        var expected = new float[batch * rows];
        Reference.Multiply(new NBitMatrix(m), x, expected, batch);
        foreach (var (path, threads) in CompressedMatVecTests.Variants())
        {
            using var parallel = new RowParallel(threads);
            var y = new float[batch * rows];
            new SimdNBitMatVec(parallel, path).Multiply(new NBitMatrix(m), x, y, batch);
            AssertClose(expected, y);
        }
    }

    [Theory]
    [InlineData(QuantType.Int2)]
    [InlineData(QuantType.Int3)]
    [InlineData(QuantType.Int4)]
    public void KernelsReproduceGptqDequantizedWeights(QuantType type)
    {
        var rnd = new Random(7 + (int)type);
        int rows = 48, cols = 136, tokens = 300, batch = 4;
        var inputs = RandomMatrices.CorrelatedInputs(rnd, tokens, cols);
        var acc = new HessianAccumulator(cols, 1);
        acc.Add(inputs, tokens);
        var w = RandomMatrices.Gaussian(rnd, rows * cols);
        var q = Gptq.Quantize(w, rows, cols, acc.ToHessian(), new GptqOptions { Type = type, Threads = 1 }, tokens);
        var m = PackedNBitMatrix.FromQuantized(q);
        m.Validate("gptq");
        // Unpacking gives back exactly the quantizer's dequantized weights.
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            PackedNBitMatrix.DequantizeRow(m.Packed.AsSpan((int)(r * m.RowBytes), (int)m.RowBytes), m.Bits, m.RowScales[r], m.RowZeros[r], row);
            Assert.Equal(q.Dequantized.AsSpan(r * cols, cols).ToArray(), row);
        }
        var x = CompressedMatVecTests.RandomVector(rnd, batch * cols);
        var dense = new float[batch * rows];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
            {
                double s = 0;
                for (int j = 0; j < cols; j++) s += (double)q.Dequantized[r * cols + j] * x[b * cols + j];
                dense[b * rows + r] = (float)s;
            }
        var expected = new float[batch * rows];
        Reference.Multiply(new NBitMatrix(m), x, expected, batch);
        Assert.Equal(dense, expected);
        foreach (var (path, threads) in CompressedMatVecTests.Variants())
        {
            using var parallel = new RowParallel(threads);
            var y = new float[batch * rows];
            new SimdNBitMatVec(parallel, path).Multiply(new NBitMatrix(m), x, y, batch);
            AssertClose(expected, y);
        }
    }

    [Fact]
    public void BadOperandsAreRefused()
    {
        var m = RandomMatrix(new Random(1), 2, 4, 16);
        using var parallel = new RowParallel(1);
        var k = new SimdNBitMatVec(parallel);
        Assert.Throws<ArgumentException>(() => k.Multiply(new NBitMatrix(m), new float[15], new float[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => k.Multiply(new NBitMatrix(m), new float[16 * 9], new float[4 * 9], 9));
        Assert.Throws<QmoeException>(() => k.Multiply(new NBitMatrix(m.Packed.AsSpan(1), m.RowScales, m.RowZeros, 2, 4, 16), new float[16], new float[4]));
    }
}
