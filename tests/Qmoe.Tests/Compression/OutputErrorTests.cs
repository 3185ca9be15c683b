using Qmoe.Compression;
using Qmoe.Quantization;

namespace Qmoe.Tests.Compression;

/// <summary>The report's output error through the Hessian (n &gt; cols) equals the one streamed over the inputs.</summary>
public class OutputErrorTests
{
    [Theory]
    [InlineData(40, 24, 300)]
    [InlineData(1500, 16, 2000)] // more rows than one block of the Hessian path
    public void HessianPathEqualsStreamedInputs(int rows, int cols, int n)
    {
        var rng = new Random(rows + cols + n);
        float[] Random(long count, double scale) => Enumerable.Range(0, (int)count).Select(_ => (float)((rng.NextDouble() - 0.5) * scale)).ToArray();
        var w = Random((long)rows * cols, 1);
        var q = w.Select(v => MathF.Round(v * 4) / 4).ToArray();
        var x = Random((long)n * cols, 2);
        for (int t = 0; t < n; t++) x[t * cols] += 3; // correlated, uneven features, as real inputs
        var acc = new HessianAccumulator(cols);
        acc.Add(x, n);
        var (e, total) = ExpertLayerQuantizer.OutputError(w, q, x, n, rows, cols);
        var (eh, totalH) = ExpertLayerQuantizer.OutputErrorFromHessian(w, q, acc.ToHessian(), n, rows, cols);
        Assert.True(Math.Abs(eh - e) <= 1e-4 * e, $"error {eh} vs {e}");
        Assert.True(Math.Abs(totalH - total) <= 1e-4 * total, $"total {totalH} vs {total}");
    }
}
