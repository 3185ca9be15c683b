using Qmoe.Runtime;
using Qmoe.Tests.Cli;

namespace Qmoe.Tests.Runtime;

public class CompressedWeightTests
{
    /// <summary>The fused-kernel path (few rows) and the decode+GEMM path (many rows times a small matrix) agree, on real GPTQ output.</summary>
    [Fact]
    public void KernelAndDecodePathsAgree()
    {
        using var tmp = Paths.Temp();
        string dir = tmp.File("c");
        var r = CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", dir, "--calib-text", Paths.CalibrationText, "--samples", "16");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var experts = new CompressedExperts(dir);
        var rnd = new Random(3);
        foreach (var kind in new[] { "wi", "wo" })
            for (int e = 0; e < 8; e += 3)
            {
                var w = experts.Weight("decoder.block.1.layer.2.mlp", kind, e);
                const int n = 32;
                Assert.True(CompressedWeight.Decodes(n, (long)w.Rows * w.Cols));
                var x = Enumerable.Range(0, n * w.Cols).Select(_ => rnd.NextSingle() * 2 - 1).ToArray();
                var viaGemm = new float[n * w.Rows];
                w.Multiply(x, n, viaGemm);
                var viaKernel = new float[n * w.Rows];
                for (int i = 0; i < n; i++) w.Multiply(x.AsSpan(i * w.Cols, w.Cols), 1, viaKernel.AsSpan(i * w.Rows, w.Rows));
                for (int i = 0; i < viaGemm.Length; i++)
                    Assert.True(Math.Abs(viaGemm[i] - viaKernel[i]) <= 1e-4f * (1 + Math.Abs(viaKernel[i])), $"{kind} expert {e} [{i}]: {viaGemm[i]} vs {viaKernel[i]}");
            }
    }
}
