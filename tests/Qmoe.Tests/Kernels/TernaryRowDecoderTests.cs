using Qmoe.IO;
using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

public class TernaryRowDecoderTests
{
    private static readonly TestDict16 Dict = TestDict16.Default;
    private static readonly DecodeTable Table = DecodeTable.FromDictionary(Dict.Dictionary);

    /// <summary>W [rows, cols] from its trits: 0, the row's min or its max (the values every kernel multiplies).</summary>
    private static float[] Expected(byte[] trits, ushort[] scales, int rows, int cols)
    {
        var w = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
            {
                int t = trits[r * cols + j];
                w[r * cols + j] = t == 0 ? 0f : BFloat16.ToFloat(scales[2 * r + t - 1]);
            }
        return w;
    }

    /// <summary>Rows [r0, r1) on every path this machine runs, bitwise against <paramref name="expected"/>, with garbage in dst beforehand.</summary>
    private static void CheckEveryPath(DecodeTable table, CompressedMatrix m, float[] expected, int r0, int r1)
    {
        foreach (var isa in KernelIsas.Supported())
        {
            var dst = Enumerable.Repeat(float.NaN, (r1 - r0) * m.Cols + TernaryRowDecoder.Padding).ToArray();
            new TernaryRowDecoder(table, isa).Decode(m, r0, r1, dst);
            var want = expected.AsSpan(r0 * m.Cols, (r1 - r0) * m.Cols);
            for (int i = 0; i < want.Length; i++)
                if (BitConverter.SingleToInt32Bits(want[i]) != BitConverter.SingleToInt32Bits(dst[i]))
                    Assert.Fail($"{KernelIsas.Name(isa)}, rows [{r0}, {r1}): weight ({r0 + i / m.Cols}, {i % m.Cols}) is {dst[i]}, expected {want[i]}");
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(17, 33)]
    [InlineData(64, 128)]
    [InlineData(33, 301)]
    [InlineData(200, 57)]
    public void RandomMatricesOnEveryPathEqualTheirTrits(int rows, int cols)
    {
        var rnd = new Random(rows * 1000 + cols);
        var trits = TestDict16.RandomTrits(rnd, rows, cols, 0.885, 0.5, 0.0, 1.0);
        var scales = TestDict16.RandomScales(rnd, rows);
        var expected = Expected(trits, scales, rows, cols);
        foreach (var padTail in new[] { false, true }) // padded: last codewords carry random trits past the row end, which the next row must overwrite
        {
            var (codes, offsets) = Dict.Encode(trits, rows, cols, padTail ? rnd : null);
            var m = new CompressedMatrix(codes, offsets, scales, rows, cols);
            CheckEveryPath(Table, m, expected, 0, rows);
            CheckEveryPath(Table, m, expected, rows / 3, rows - rows / 4);
        }
    }

    [Fact]
    public void CodecDefaultDictionaryOnEveryTinyExpertEqualsTheCodecsDecoder()
    {
        var dict = Qmoe.Codec.CodeDictionary.Default;
        var table = DecodeTable.FromDictionary(dict.Entries);
        int matrices = 0;
        foreach (var (name, rows, cols, trits, scales, codes, offsets) in ThresholdTernary.TinyExperts())
        {
            // The reference: the codec's own row decoder.
            var decoded = new byte[cols];
            for (int r = 0; r < rows; r++)
            {
                Qmoe.Codec.TernaryDecoder.DecodeRow(codes.AsSpan(offsets[r], offsets[r + 1] - offsets[r]), dict, decoded);
                Assert.True(decoded.AsSpan().SequenceEqual(trits.AsSpan(r * cols, cols)), $"{name} row {r}");
            }
            CheckEveryPath(table, new CompressedMatrix(codes, offsets, scales, rows, cols), Expected(trits, scales, rows, cols), 0, rows);
            matrices++;
        }
        Assert.Equal(32, matrices);
    }

    [Fact]
    public void MalformedRowsAndShortBuffersAreRefused()
    {
        var rnd = new Random(5);
        var trits = TestDict16.RandomTrits(rnd, 4, 40, 0.885);
        var (codes, offsets) = Dict.Encode(trits, 4, 40);
        var scales = TestDict16.RandomScales(rnd, 4);
        var zero28 = Dict.Encode(new byte[28], 1, 28).Codes[0];
        foreach (var isa in KernelIsas.Supported())
        {
            var decoder = new TernaryRowDecoder(Table, isa);
            var dst = new float[4 * 40 + TernaryRowDecoder.Padding];
            // Row 1 missing its last codeword.
            var shortCodes = codes.Where((_, i) => i != offsets[2] - 1).ToArray();
            var shortOffsets = offsets.Select((o, r) => r >= 2 ? o - 1 : o).ToArray();
            var e = Assert.Throws<QmoeException>(() => decoder.Decode(new CompressedMatrix(shortCodes, shortOffsets, scales, 4, 40), 0, 4, dst));
            Assert.Contains("row 1", e.Message);
            // A garbage stream of long zero runs: every row overshoots; refused without writing past dst.
            var overshoot = Enumerable.Repeat(zero28, codes.Length).ToArray();
            Assert.Throws<QmoeException>(() => decoder.Decode(new CompressedMatrix(overshoot, offsets, scales, 4, 40), 0, 4, dst));
            Assert.Throws<QmoeException>(() => decoder.Decode(new CompressedMatrix(codes, [0, 5, 3, 9, codes.Length], scales, 4, 40), 0, 4, dst));
            Assert.Throws<ArgumentException>(() => decoder.Decode(new CompressedMatrix(codes, offsets, scales, 4, 40), 0, 4, new float[4 * 40]));
            Assert.Throws<ArgumentOutOfRangeException>(() => decoder.Decode(new CompressedMatrix(codes, offsets, scales, 4, 40), 2, 5, dst));
        }
    }
}
