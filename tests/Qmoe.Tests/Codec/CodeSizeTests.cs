using Qmoe.Codec;

namespace Qmoe.Tests.Codec;

public class CodeSizeTests
{
    /// <summary>
    /// QMoE's construction on i.i.d. rows of 3072 trits with 88.5% zeros gives about 0.737 codeword bits per weight
    /// (entropy 0.628). 96 rows = 295k trits keep the sampling error of the mean near ±0.002.
    /// </summary>
    [Fact]
    public void DefaultDictionaryMatchesQMoEOnIidRows()
    {
        const int rows = 96, cols = 3072;
        var trits = RandomTrits.Iid(new Random(7), rows * cols, 0.885);
        var m = TernaryEncoder.Encode(trits, rows, cols, CodeDictionary.Default);
        double bits = 16.0 * m.Codes.Length / trits.Length;
        Assert.InRange(bits, 0.730, 0.745);
        Assert.InRange(TritStatistics.Of(trits).EntropyBits, 0.62, 0.636);
    }

    [Fact]
    public void TritStatisticsFromCodesMatchTheTrits()
    {
        foreach (int cols in new[] { 1, 7, 28, 29, 300 })
        {
            var trits = RandomTrits.Iid(new Random(cols), 13 * cols, 0.8);
            var m = TernaryEncoder.Encode(trits, 13, cols, CodeDictionary.Default);
            Assert.Equal(TritStatistics.Of(trits), TritStatistics.OfCodes(m.Codes, m.RowOffsets, cols, CodeDictionary.Default));
        }
        var s = new TritStatistics(2, 1, 1);
        Assert.Equal(1.5, s.EntropyBits, 12);
        Assert.Equal(0.5, s.ZeroFraction);
    }
}
