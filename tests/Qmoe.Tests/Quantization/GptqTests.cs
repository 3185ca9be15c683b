using Qmoe.IO;
using Qmoe.Quantization;
using Qmoe.Tests.Numerics;

namespace Qmoe.Tests.Quantization;

public class GptqTests
{
    private static float[] Identity(int n)
    {
        var h = new float[n * n];
        for (int i = 0; i < n; i++) h[i * n + i] = 1f;
        return h;
    }

    private static float[] HessianOf(float[] x, int tokens, int cols)
    {
        var acc = new HessianAccumulator(cols, 1);
        acc.Add(x, tokens);
        return acc.ToHessian();
    }

    [Theory]
    [InlineData(QuantType.Ternary)]
    [InlineData(QuantType.Int3)]
    public void IdentityHessianReproducesRtn(QuantType type)
    {
        int rows = 13, cols = 300;
        var w = RandomMatrices.Gaussian(new Random(2), rows * cols);
        var rtn = Rtn.Quantize(type, w, rows, cols);
        var gptq = Gptq.Quantize(w, rows, cols, Identity(cols), new GptqOptions { Type = type, Threads = 2 });
        Assert.Equal(QuantMethod.Gptq, gptq.Method);
        Assert.Equal(rtn.Dequantized, gptq.Dequantized);
        Assert.Equal(rtn.Codes, gptq.Codes);
    }

    [Theory]
    [InlineData(QuantType.Ternary, false)]
    [InlineData(QuantType.Int2, false)]
    [InlineData(QuantType.Int3, true)]
    [InlineData(QuantType.Int4, false)]
    public void BeatsRtnOnCorrelatedInputsAndStaysOnGrid(QuantType type, bool actOrder)
    {
        var rng = new Random(3 + (int)type);
        int rows = 40, cols = 150, tokens = 600; // cols not a multiple of the block size 64 used here
        var x = RandomMatrices.CorrelatedInputs(rng, tokens, cols);
        var h = HessianOf(x, tokens, cols);
        var w = RandomMatrices.Gaussian(rng, rows * cols);
        var rtn = Rtn.Quantize(type, w, rows, cols);
        var gptq = Gptq.Quantize(w, rows, cols, h, new GptqOptions { Type = type, BlockSize = 64, ActOrder = actOrder, Threads = 2 }, tokens);
        double eR = LayerError.Compute(w, rtn.Dequantized, rows, cols, h);
        double eG = LayerError.Compute(w, gptq.Dequantized, rows, cols, h);
        if (!(eG < 0.8 * eR)) Assert.Fail($"GPTQ {eG} vs RTN {eR}");
        AssertOnGrid(gptq);
    }

    internal static void AssertOnGrid(QuantizedWeight q)
    {
        for (int r = 0; r < q.Rows; r++)
            for (int c = 0; c < q.Cols; c++)
            {
                int i = r * q.Cols + c;
                float v = q.Grid.Quantize(r, q.Dequantized[i], out byte code); // a grid point maps to itself
                if (v != q.Dequantized[i] || code != q.Codes[i]) Assert.Fail($"({r},{c}): {q.Dequantized[i]} (code {q.Codes[i]}) is not on the grid");
            }
    }

    [Fact]
    public void ResultIsIndependentOfThreadsAndBatching()
    {
        var rng = new Random(4);
        int e = 3, rows = 300, cols = 70, tokens = 200;
        var w = RandomMatrices.Gaussian(rng, e * rows * cols);
        var h = new float[e * cols * cols];
        for (int x = 0; x < e; x++)
            HessianOf(RandomMatrices.CorrelatedInputs(rng, tokens, cols), tokens, cols).CopyTo(h, x * cols * cols);
        var opts = new GptqOptions { Type = QuantType.Ternary, BlockSize = 32 };
        var batch = GptqBatch.Quantize(w, h, rows, cols, ["a", "b", "c"], [tokens, tokens, tokens], opts with { Threads = 2 });
        Assert.Empty(batch.Fallbacks);
        for (int x = 0; x < e; x++)
        {
            var wx = w.AsSpan(x * rows * cols, rows * cols);
            var hx = h.AsSpan(x * cols * cols, cols * cols);
            var one = Gptq.Quantize(wx, rows, cols, hx, opts with { Threads = 1 });
            var two = Gptq.Quantize(wx, rows, cols, hx, opts with { Threads = 2 });
            Assert.Equal(one.Dequantized, two.Dequantized);
            Assert.Equal(one.Dequantized, batch.Experts[x].Dequantized);
            Assert.Equal(one.Codes, batch.Experts[x].Codes);
        }
    }

    [Fact]
    public void DeadColumnsAreZeroed()
    {
        var rng = new Random(6);
        int rows = 5, cols = 40, tokens = 100;
        var x = RandomMatrices.CorrelatedInputs(rng, tokens, cols);
        for (int t = 0; t < tokens; t++) x[t * cols + 7] = 0f;
        var w = RandomMatrices.Gaussian(rng, rows * cols);
        var q = Gptq.Quantize(w, rows, cols, HessianOf(x, tokens, cols), new GptqOptions { Type = QuantType.Int4 });
        for (int r = 0; r < rows; r++) Assert.Equal(0f, q.Dequantized[r * cols + 7]);
    }

    [Fact]
    public void BadExpertsFallBackToRtnAndAreNamed()
    {
        var rng = new Random(7);
        int rows = 6, cols = 20, tokens = 50;
        var w = RandomMatrices.Gaussian(rng, 4 * rows * cols);
        var h = new float[4 * cols * cols];
        var good = HessianOf(RandomMatrices.CorrelatedInputs(rng, tokens, cols), tokens, cols);
        good.CopyTo(h, 0);                                 // e0: fine
        good.CopyTo(h, cols * cols);                       // e1: zero tokens reported by the caller
        /* e2: all-zero H (no tokens, count unknown) */
        good.CopyTo(h, 3 * cols * cols);                   // e3: indefinite beyond repair
        for (int i = 0; i < cols; i++) h[3 * cols * cols + i * cols + i] = -1e6f;
        var result = GptqBatch.Quantize(w, h, rows, cols, ["e0", "e1", "e2", "e3"], [tokens, 0, -1, tokens], new GptqOptions { Type = QuantType.Ternary });
        Assert.Equal(["e1", "e2", "e3"], result.Fallbacks.Select(f => f.Name));
        Assert.Contains("Cholesky", result.Fallbacks[2].Reason);
        Assert.Equal(QuantMethod.Gptq, result.Experts[0].Method);
        for (int x = 1; x < 4; x++)
        {
            var rtn = Rtn.Quantize(QuantType.Ternary, w.AsSpan(x * rows * cols, rows * cols), rows, cols);
            Assert.Equal(QuantMethod.Rtn, result.Experts[x].Method);
            Assert.Equal(rtn.Dequantized, result.Experts[x].Dequantized);
        }
    }

    [Fact]
    public void NonFiniteWeightsNameTheExpert()
    {
        int rows = 2, cols = 3;
        var w = new float[2 * rows * cols];
        w[rows * cols + 4] = float.NaN;
        var h = new float[2 * cols * cols];
        for (int i = 0; i < cols; i++) h[i * cols + i] = h[cols * cols + i * cols + i] = 1f;
        var e = Assert.Throws<QmoeException>(() => GptqBatch.Quantize(w, h, rows, cols, ["ok", "bad.wi"], [], new GptqOptions { Threads = 2 }));
        Assert.StartsWith("bad.wi: ", e.Message);
    }

    [Fact]
    public void RaisedDampingRescuesANearlySingularHessian()
    {
        int rows = 4, cols = 30;
        var w = RandomMatrices.Gaussian(new Random(8), rows * cols);
        // Rank one H with a slightly negative eigenvalue direction: fails at damp 0.1·mean, passes after raising it.
        var v = RandomMatrices.Gaussian(new Random(9), cols);
        var h = new float[cols * cols];
        for (int i = 0; i < cols; i++) for (int j = 0; j < cols; j++) h[i * cols + j] = v[i] * v[j];
        double mean = Enumerable.Range(0, cols).Average(i => h[i * cols + i]);
        for (int i = 0; i < cols; i++) h[i * cols + i] -= (float)(0.3 * mean); // min eigenvalue -0.3m, mean diag 0.7m
        var q = Gptq.Quantize(w, rows, cols, h, new GptqOptions { Type = QuantType.Ternary });
        Assert.Equal(QuantMethod.Gptq, q.Method);
        Assert.Equal(1.0, q.Damp, 6);
    }

    [FixtureFact("references", "switch-small-32", "hessian_inputs.safetensors")]
    public void BeatsRtnOnRealCalibrationInputs()
    {
        using var f = SafeTensorsFile.Open(Paths.Fixture("references", "switch-small-32", "hessian_inputs.safetensors")!);
        var x = f.ReadFloat32("X");
        var wi = f.ReadFloat32("wi");
        int tokens = (int)f.Info("X").Shape[0], cols = (int)f.Info("X").Shape[1], rows = (int)f.Info("wi").Shape[0];
        var h = HessianOf(x, (int)tokens, cols);
        var hRef = f.ReadFloat32("H");
        for (int i = 0; i < h.Length; i++) if (!(Math.Abs(h[i] - hRef[i]) <= 1e-4f * (1 + Math.Abs(hRef[i])))) Assert.Fail($"H[{i}]");
        foreach (var type in Enum.GetValues<QuantType>())
        {
            var rtn = Rtn.Quantize(type, wi, rows, cols);
            var gptq = Gptq.Quantize(wi, rows, cols, h, new GptqOptions { Type = type, Threads = 2 }, tokens);
            double ratio = LayerError.Compute(wi, gptq.Dequantized, rows, cols, h) / LayerError.Compute(wi, rtn.Dequantized, rows, cols, h);
            if (!(ratio < 0.9)) Assert.Fail($"{type}: GPTQ/RTN objective {ratio}");
            AssertOnGrid(gptq);
        }
    }
}
