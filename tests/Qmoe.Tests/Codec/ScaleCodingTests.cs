using Qmoe.Codec;

namespace Qmoe.Tests.Codec;

public class ScaleCodingTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 2)]
    [InlineData(100, 3)]
    [InlineData(1000, 300)]
    public void ScalesRoundTripLosslessly(int count, int patterns)
    {
        var rnd = new Random(count);
        var highs = Enumerable.Range(0, patterns).Select(_ => rnd.Next(512)).ToArray();
        var scales = Enumerable.Range(0, count).Select(_ => (ushort)(highs[rnd.Next(patterns)] << 7 | rnd.Next(128))).ToArray();
        var (table, fields) = ScaleCoding.Encode(scales);
        Assert.True(table.Length <= patterns);
        Assert.Equal(ScaleCoding.FieldBytes(count, table.Length), fields.Length);
        Assert.Equal(scales, ScaleCoding.Decode(table, fields, count, "t"));
    }

    [Fact]
    public void TwoPatternsTakeEightBitsPerScale()
    {
        ushort[] scales = [0x3E80, 0xBE00, 0x3EFF, 0xBE7F]; // patterns 0x7D and 0x17C
        var (table, fields) = ScaleCoding.Encode(scales);
        Assert.Equal(new ushort[] { 0x7D, 0x17C }, table);
        Assert.Equal(4, fields.Length);
    }

    [Fact]
    public void BadTablesIndicesAndPaddingAreRefused()
    {
        ushort[] scales = [0x3E80, 0xBE81, 0x3F12];
        var (table, fields) = ScaleCoding.Encode(scales); // 3 patterns: 9-bit fields, 27 bits in 4 bytes
        Assert.Throws<QmoeException>(() => ScaleCoding.Decode([table[1], table[0], table[2]], fields, 3, "t"));
        Assert.Throws<QmoeException>(() => ScaleCoding.Decode([], fields, 3, "t"));
        Assert.Throws<QmoeException>(() => ScaleCoding.Decode(table, fields, 4, "t"));
        var padded = (byte[])fields.Clone();
        padded[3] |= 0x80;
        Assert.Contains("padding", Assert.Throws<QmoeException>(() => ScaleCoding.Decode(table, padded, 3, "t")).Message);
        var badIndex = (byte[])fields.Clone();
        badIndex[0] |= 0x80; badIndex[1] |= 0x01; // first field's index = 3 ≥ 3 entries
        Assert.Contains("table entry 3", Assert.Throws<QmoeException>(() => ScaleCoding.Decode(table, badIndex, 3, "t")).Message);
    }
}
