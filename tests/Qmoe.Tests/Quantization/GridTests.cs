using Qmoe.IO;
using Qmoe.Quantization;
using Qmoe.Tests.Numerics;

namespace Qmoe.Tests.Quantization;

public class GridTests
{
    [Fact]
    public void TypeTableIsConsistent()
    {
        Assert.Equal(Enum.GetValues<QuantType>().Length, QuantTypeInfo.All.Count);
        foreach (var t in QuantTypeInfo.All)
        {
            Assert.Same(t, QuantTypeInfo.Of(t.Type));
            Assert.Same(t, QuantTypeInfo.Parse(t.Name));
        }
        Assert.Equal(8, QuantTypeInfo.Of(QuantType.Int3).Levels);
        Assert.Throws<QmoeException>(() => QuantTypeInfo.Parse("5"));
    }

    [Fact]
    public void TernaryIsNearestPointOfBf16Levels()
    {
        var rng = new Random(1);
        int rows = 9, cols = 37;
        var w = RandomMatrices.Gaussian(rng, rows * cols);
        for (int c = 0; c < cols; c++) w[3 * cols + c] = Math.Abs(w[3 * cols + c]); // a row without negatives
        var q = Rtn.Quantize(QuantType.Ternary, w, rows, cols);
        var scales = q.TernaryScales();
        for (int r = 0; r < rows; r++)
        {
            var row = w.AsSpan(r * cols, cols);
            float lo = BFloat16.ToFloat(scales[2 * r]), hi = BFloat16.ToFloat(scales[2 * r + 1]);
            Assert.Equal(BFloat16.Round(Math.Min(0f, row.ToArray().Min())), lo);
            Assert.Equal(BFloat16.Round(Math.Max(0f, row.ToArray().Max())), hi);
            float[] levels = [0f, lo, hi];
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                Assert.Equal(levels[q.Codes[i]], q.Dequantized[i]);
                float best = levels.Min(l => Math.Abs(l - w[i]));
                Assert.Equal(best, Math.Abs(q.Dequantized[i] - w[i]));
            }
        }
        Assert.DoesNotContain(q.Codes.Skip(3 * cols).Take(cols), b => b == 1);
    }

    [Theory]
    [InlineData(QuantType.Int2)]
    [InlineData(QuantType.Int3)]
    [InlineData(QuantType.Int4)]
    public void NBitMatchesGptqQuantizer(QuantType type)
    {
        var rng = new Random((int)type);
        int rows = 7, cols = 50, maxq = QuantTypeInfo.Of(type).Levels - 1;
        var w = RandomMatrices.Uniform(rng, rows * cols);
        for (int c = 0; c < cols; c++) w[2 * cols + c] = 0f; // all-zero row: range [-1, 1]
        var q = Rtn.Quantize(type, w, rows, cols);
        var sz = q.Grid.ScaleAndZero();
        for (int r = 0; r < rows; r++)
        {
            var row = w.AsSpan(r * cols, cols).ToArray();
            float xmin = Math.Min(row.Min(), 0f), xmax = Math.Max(row.Max(), 0f);
            if (xmin == 0 && xmax == 0) { xmin = -1; xmax = 1; }
            float scale = (xmax - xmin) / maxq, zero = MathF.Round(-xmin / scale);
            Assert.Equal(scale, sz[2 * r]);
            Assert.Equal(zero, sz[2 * r + 1]);
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                float code = Math.Clamp(MathF.Round(w[i] / scale) + zero, 0, maxq);
                Assert.Equal(code, q.Codes[i]);
                Assert.Equal(scale * (code - zero), q.Dequantized[i]);
            }
        }
    }

    [Fact]
    public void NonFiniteWeightIsRefused()
    {
        var w = new float[] { 1f, float.NaN, 0f, 2f };
        Assert.Throws<QmoeException>(() => Rtn.Quantize(QuantType.Int4, w, 2, 2));
    }
}
