using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Qmoe.Quantization;
using Qmoe.Tests.Numerics;

namespace Qmoe.Tests.Quantization;

public class HessianTests
{
    [Fact]
    public void MatchesDoubleReferenceAcrossBatchesAndChunks()
    {
        var rng = new Random(10);
        int cols = 33, tokens = HessianAccumulator.ChunkTokens + 77;
        var x = RandomMatrices.CorrelatedInputs(rng, tokens, cols);
        var acc = new HessianAccumulator(cols, 2);
        Assert.All(acc.ToHessian(), v => Assert.Equal(0f, v));
        acc.Add(x.AsSpan(0, 5 * cols), 5);
        acc.Add(x.AsSpan(5 * cols), tokens - 5);
        Assert.Equal(tokens, acc.Tokens);
        var h = acc.ToHessian();
        for (int i = 0; i < cols; i++)
            for (int j = 0; j < cols; j++)
            {
                double s = 0;
                for (int t = 0; t < tokens; t++) s += (double)x[t * cols + i] * x[t * cols + j];
                s *= 2.0 / tokens;
                if (!(Math.Abs(h[i * cols + j] - s) < 1e-5 * (1 + Math.Abs(s)))) Assert.Fail($"({i},{j}) {h[i * cols + j]} vs {s}");
                Assert.Equal(h[i * cols + j], h[j * cols + i]);
            }
    }

    [Fact]
    public void StorageDoesNotChangeTheBits()
    {
        // Over three chunks (the double sums see several f32 chunk products): the hash was recorded from commit
        // df5f917's accumulator (full double square, own chunk buffer); the packed triangle and a caller's scratch
        // (here the output span itself) must give the same bits.
        int cols = 150, tokens = 2 * HessianAccumulator.ChunkTokens + 300;
        var x = RandomMatrices.CorrelatedInputs(new Random(17), tokens, cols);
        var own = new HessianAccumulator(cols, 2);
        own.Add(x.AsSpan(0, 700 * cols), 700);
        own.Add(x.AsSpan(700 * cols), tokens - 700);
        var h = own.ToHessian();
        Assert.Equal("c59c94cf433cb920", Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(h.AsSpan())))[..16]);
        var hs = new float[cols * cols];
        var lent = new HessianAccumulator(cols, 2, hs);
        lent.Add(x.AsSpan(0, 700 * cols), 700);
        lent.Add(x.AsSpan(700 * cols), tokens - 700);
        lent.WriteHessian(hs);
        Assert.Equal(h, hs);
    }
}
