using Qmoe.IO;
using Qmoe.Numerics;

namespace Qmoe.Tests.Numerics;

public class MatMulTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 67, 301)]
    [InlineData(3, 130, 47)]
    [InlineData(8, 40, 64)]
    [InlineData(9, 33, 65)]
    [InlineData(150, 77, 129)]
    [InlineData(8, 40, 3001)] // the dot path's k blocks (8 rows x 3001 x 4 B outgrow L1), with a scalar tail
    [InlineData(2, 19, 3100)]
    public void MatchesReferenceForF32AndBf16(int m, int n, int k)
    {
        var rng = new Random(m + 7 * n + 13 * k);
        var x = RandomMatrices.Uniform(rng, m * k);
        var w = RandomMatrices.Uniform(rng, n * k);
        var wb = new ushort[n * k];
        BFloat16.FromFloat(w, wb);
        var expectF = new float[m * n];
        var expectB = new float[m * n];
        NumericsReference.XWt(x, i => w[i], expectF, m, n, k);
        NumericsReference.XWt(x, i => BFloat16.ToFloat(wb[i]), expectB, m, n, k);
        var yF = new float[m * n];
        var yB = new float[m * n];
        foreach (int threads in new[] { 1, 2 })
        {
            MatMul.XWt(x, w, yF, m, n, k, threads);
            MatMul.XWt(x, wb, yB, m, n, k, threads);
            for (int i = 0; i < m * n; i++)
            {
                if (!(Math.Abs(yF[i] - expectF[i]) <= 2e-6f * k + 1e-6f)) Assert.Fail($"f32 {i}: {yF[i]} vs {expectF[i]}");
                if (!(Math.Abs(yB[i] - expectB[i]) <= 2e-6f * k + 1e-6f)) Assert.Fail($"bf16 {i}: {yB[i]} vs {expectB[i]}");
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(40)]
    public void ResultIsIndependentOfThreadCount(int m)
    {
        var rng = new Random(m);
        int n = 333, k = 515;
        var x = RandomMatrices.Uniform(rng, m * k);
        var wb = new ushort[n * k];
        BFloat16.FromFloat(RandomMatrices.Uniform(rng, n * k), wb);
        var y1 = new float[m * n];
        var y2 = new float[m * n];
        MatMul.XWt(x, wb, y1, m, n, k, 1);
        MatMul.XWt(x, wb, y2, m, n, k, 2);
        Assert.Equal(y1, y2);
    }

    // The dot path (up to 8 rows) computes each row as that row alone would: batched decoding relies on it
    // (a decode step's logits rows are bitwise those of each sequence decoded by itself).
    [Theory]
    [InlineData(2, 16)]
    [InlineData(5, 192)]
    [InlineData(8, 96)]
    [InlineData(8, 301)]
    [InlineData(7, 33)]
    [InlineData(8, 4099)] // swept in k blocks; a single row is not
    [InlineData(2, 3500)]
    [InlineData(5, 1300)]
    public void DotPathRowsEqualSingleRowProducts(int m, int k)
    {
        var rng = new Random(m * 31 + k);
        int n = 70;
        var x = RandomMatrices.Uniform(rng, m * k);
        var w = RandomMatrices.Uniform(rng, n * k);
        var wb = new ushort[n * k];
        BFloat16.FromFloat(w, wb);
        var yF = new float[m * n];
        var yB = new float[m * n];
        MatMul.XWt(x, w, yF, m, n, k);
        MatMul.XWt(x, wb, yB, m, n, k);
        var rowF = new float[n];
        var rowB = new float[n];
        for (int i = 0; i < m; i++)
        {
            MatMul.XWt(x.AsSpan(i * k, k), w, rowF, 1, n, k);
            MatMul.XWt(x.AsSpan(i * k, k), wb, rowB, 1, n, k);
            Assert.Equal(rowF, yF.AsSpan(i * n, n).ToArray());
            Assert.Equal(rowB, yB.AsSpan(i * n, n).ToArray());
        }
    }

    // f32 W rows are swept in pairs (each load of X feeds two rows); a row's sum must not depend on its partner or on
    // whether it was paired. Dropping W's first row shifts every pair by one, and the last row of an odd count is alone.
    [Theory]
    [InlineData(1, 16)]
    [InlineData(3, 192)]
    [InlineData(8, 192)]
    [InlineData(8, 301)]
    [InlineData(4, 4099)]
    public void PairedRowsEqualUnpairedRows(int m, int k)
    {
        var rng = new Random(m * 17 + k);
        int n = 35;
        var x = RandomMatrices.Uniform(rng, m * k);
        var w = RandomMatrices.Uniform(rng, n * k);
        var all = new float[m * n];
        var shifted = new float[m * (n - 1)];
        MatMul.XWt(x, w, all, m, n, k);
        MatMul.XWt(x, w.AsSpan(k), shifted, m, n - 1, k);
        for (int i = 0; i < m; i++)
            Assert.Equal(all.AsSpan(i * n + 1, n - 1).ToArray(), shifted.AsSpan(i * (n - 1), n - 1).ToArray());
    }
}
