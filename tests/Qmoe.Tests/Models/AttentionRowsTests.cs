using Qmoe.Models.Layers;

namespace Qmoe.Tests.Models;

/// <summary>The vectorised key loops of attention against plain double-precision loops, at head widths that exercise
/// every vector width and the scalar tail, over strided rows (several heads per key row).</summary>
public class AttentionRowsTests
{
    [Theory]
    [InlineData(3, 1)]
    [InlineData(5, 7)]
    [InlineData(32, 37)]
    [InlineData(44, 16)]
    [InlineData(64, 3)]
    [InlineData(128, 20)]
    public void ScoresAndWeightedSumMatchPlainLoops(int width, int count)
    {
        var rng = new Random(width * 100 + count);
        int stride = 3 * width + 1, offset = width + 1; // the head's columns inside wider key rows
        float R() => (float)(rng.NextDouble() * 2 - 1);
        var q = Enumerable.Range(0, width).Select(_ => R()).ToArray();
        var keys = Enumerable.Range(0, count * stride).Select(_ => R()).ToArray();
        var weights = Enumerable.Range(0, count).Select(_ => (float)rng.NextDouble()).ToArray();
        const float scale = 0.17f;

        var scores = new float[count];
        AttentionRows.Scores(q, keys.AsSpan(offset), stride, scale, scores);
        var output = new float[width];
        AttentionRows.WeightedSum(keys.AsSpan(offset), stride, weights, output);
        for (int j = 0; j < count; j++)
        {
            double dot = 0;
            for (int i = 0; i < width; i++) dot += (double)q[i] * keys[j * stride + offset + i];
            Assert.Equal(dot * scale, scores[j], 1e-5 * Math.Sqrt(width));
        }
        for (int i = 0; i < width; i++)
        {
            double sum = 0;
            for (int j = 0; j < count; j++) sum += (double)weights[j] * keys[j * stride + offset + i];
            Assert.Equal(sum, output[i], 1e-5 * Math.Sqrt(count));
        }
    }

    [Fact]
    public void RowsPastTheBufferAreRefused()
    {
        var keys = new float[2 * 8];
        Assert.Throws<ArgumentException>(() => AttentionRows.Scores(new float[8], keys.AsSpan(1), 8, 1f, new float[2]));
        Assert.Throws<ArgumentException>(() => AttentionRows.WeightedSum(keys.AsSpan(1), 8, new float[2], new float[8]));
    }
}
