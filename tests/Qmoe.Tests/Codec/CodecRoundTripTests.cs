using CsCheck;
using Qmoe.Codec;

namespace Qmoe.Tests.Codec;

public class CodecRoundTripTests
{
    private static void AssertRoundTrip(byte[] trits, int rows, int cols, CodeDictionary dict)
    {
        var m = TernaryEncoder.Encode(trits, rows, cols, dict);
        Assert.Equal(rows + 1, m.RowOffsets.Length);
        Assert.Equal(0, m.RowOffsets[0]);
        Assert.Equal(m.Codes.Length, m.RowOffsets[rows]);
        Assert.Equal(trits, TernaryDecoder.Decode(m, dict));
        var row = new byte[cols];
        for (int r = 0; r < rows; r++)
        {
            TernaryDecoder.DecodeRowReference(m.Row(r), dict, row);
            Assert.Equal(trits.AsSpan(r * cols, cols).ToArray(), row);
            // the serial single-row encoder gives the same codes as the parallel matrix encoder
            var codes = new ushort[TernaryEncoder.MaxCodesPerRow(cols)];
            int n = TernaryEncoder.EncodeRow(trits.AsSpan(r * cols, cols), dict, codes);
            Assert.Equal(m.Row(r).ToArray(), codes.AsSpan(0, n).ToArray());
        }
    }

    [Fact]
    public void RandomMatricesOfManyShapesAndZeroFractionsRoundTrip()
    {
        Gen.Select(Gen.Int[0, 9], Gen.Int[0, 90], Gen.Double[0, 1], Gen.Int)
            .Sample((rows, cols, p0, seed) =>
            {
                var trits = RandomTrits.Iid(new Random(seed), rows * cols, p0);
                AssertRoundTrip(trits, rows, cols, CodeDictionary.Default);
            }, iter: 300);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void ConstantRowsRoundTrip(byte value)
    {
        foreach (int cols in new[] { 1, 2, 27, 28, 29, 31, 32, 33, 255, 256, 3072 })
            AssertRoundTrip(Enumerable.Repeat(value, 3 * cols).ToArray(), 3, cols, CodeDictionary.Default);
    }

    [Fact]
    public void LargeMatrixSplitsIntoParallelChunksAndRoundTrips()
    {
        // 700 x 1001: several work items, odd width.
        var trits = RandomTrits.Iid(new Random(5), 700 * 1001, 0.85);
        var m = TernaryEncoder.Encode(trits, 700, 1001, CodeDictionary.Default);
        Assert.Equal(trits, TernaryDecoder.Decode(m, CodeDictionary.Default));
        var single = TernaryEncoder.Encode(trits, 700, 1001, CodeDictionary.Default, threads: 1);
        Assert.Equal(single.Codes, m.Codes);
        Assert.Equal(single.RowOffsets, m.RowOffsets);
    }

    [Fact]
    public void FittedDictionaryRoundTrips()
    {
        var dict = CodeDictionary.Build(PairModel.Fit([100, 3, 0, 7, 0, 0, 1, 0, 0]));
        var trits = RandomTrits.Iid(new Random(9), 40 * 77, 0.7);
        AssertRoundTrip(trits, 40, 77, dict);
    }

    [Fact]
    public void BadTritsAndShapesAreRefused()
    {
        var e = Assert.Throws<QmoeException>(() => TernaryEncoder.Encode(new byte[] { 0, 1, 3, 0 }, 2, 2, CodeDictionary.Default));
        Assert.Contains("row 1, column 0", e.Message);
        Assert.Throws<QmoeException>(() => TernaryEncoder.Encode(new byte[5], 2, 2, CodeDictionary.Default));
    }

    [Fact]
    public void CodesThatDoNotCoverTheRowExactlyAreRefused()
    {
        var d = CodeDictionary.Default;
        var row = new byte[10];
        // code 0 = one zero pair: 4 codes cover 8 of 10 trits, 6 codes start past the end.
        Assert.Contains("cover 8", Assert.Throws<QmoeException>(() => TernaryDecoder.DecodeRow(new ushort[4], d, row)).Message);
        Assert.Contains("past the row end", Assert.Throws<QmoeException>(() => TernaryDecoder.DecodeRow(new ushort[6], d, row)).Message);
        Assert.Throws<QmoeException>(() => TernaryDecoder.DecodeRowReference(new ushort[4], d, row));
        Assert.Throws<QmoeException>(() => TernaryDecoder.DecodeRowReference(new ushort[6], d, row));
    }
}
