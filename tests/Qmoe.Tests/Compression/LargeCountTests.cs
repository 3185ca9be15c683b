using Qmoe.Compression;
using Qmoe.Models.Layers;

namespace Qmoe.Tests.Compression;

/// <summary>
/// Token counts whose product with a width passes 2^31 (an expert with 150k+ calibration tokens at d_ff 14336 does):
/// the list-buffer and expert-forward paths must neither wrap a 32-bit size nor need an array that large. Small widths
/// and many tokens keep these cheap.
/// </summary>
public class LargeCountTests
{
    [Fact]
    public void ListBufferGathersRowsPastTwoToThe31OverWidth()
    {
        const int width = 1024, distinct = 16;
        int count = (1 << 21) + 3; // count · width = 2^31 + 3072
        using var tmp = Paths.Temp();
        var budget = new MemoryBudget(1L << 30, tmp.File("spill"));
        using var input = new ActivationBuffer(distinct, width, budget, "input");
        for (int r = 0; r < distinct; r++)
            for (int c = 0; c < width; c++) input.Slice(r, 1)[c] = r * 10_000 + c;
        var lists = new ExpertListBuffers(2, input);
        for (int i = 0; i < count; i++) lists.AppendRow(1, (i * 7L) % distinct);
        Assert.Equal(count, lists.Count(1));
        Assert.True((long)lists.Count(1) * width > int.MaxValue);

        // The last rows, far past 2^31 / width into the list.
        var x = new float[3 * width];
        lists.Gather(1, count - 3, 3, x);
        for (int i = 0; i < 3; i++)
        {
            long row = ((count - 3 + i) * 7L) % distinct;
            Assert.Equal(row * 10_000, x[i * width]);
            Assert.Equal(row * 10_000 + width - 1, x[i * width + width - 1]);
        }
        // All at once would need an array past 2^31 elements: refused as an overflow, not a wrapped (negative) size.
        Assert.Throws<OverflowException>(() => lists.Gather(1));
    }

    /// <summary>CI: three hidden chunks and a remainder. QMOE_SLOW=1: n · ff = 2^31 + 4096 (about 2^33 flops).</summary>
    [Fact]
    public void ExpertForwardWithTokensTimesFfPastTwoToThe31()
    {
        // y = wo · relu(wi · x) with x of width 1: wi [4096, 1] of ones, wo [1, 4096] of 1/4096, so y = relu(x).
        const int ff = 4096;
        bool slow = Environment.GetEnvironmentVariable("QMOE_SLOW") == "1";
        int n = slow ? (1 << 19) + 1 : 3 * (1 << 24) / ff + 5;
        var x = new float[n];
        for (int t = 0; t < n; t++) x[t] = t % 7 - 3;
        var wi = new Matrix(Enumerable.Repeat(1f, ff).ToArray(), ff, 1);
        var wo = new Matrix(Enumerable.Repeat(1f / ff, ff).ToArray(), 1, ff);
        var y = new float[n];
        FeedForward.Relu(x, n, wi, wo, y);
        for (int t = 0; t < n; t++)
            if (Math.Abs(y[t] - Math.Max(0, t % 7 - 3)) > 1e-5) Assert.Fail($"token {t}: {y[t]}, expected {Math.Max(0, t % 7 - 3)}");
    }
}
