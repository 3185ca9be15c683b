using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Qmoe.Quantization;
using Qmoe.Tests.Numerics;

namespace Qmoe.Tests.Quantization;

/// <summary>
/// GPTQ's storage (which arrays it copies, where it factors) may change, its arithmetic may not: each case hashes
/// the full result (dequantized values, codes, method, fallback reason, damping) and compares with a value recorded
/// from commit df5f917's code (before the working set was shrunk). The cases cover what the storage changes touch:
/// dead columns, act order, the blocked Cholesky and recursive triangular inverse (cols above their block sizes),
/// raised damping, the RTN fallbacks and the batched path (whole and subset). A last test bounds the bytes GPTQ allocates.
/// </summary>
public class GptqStorageTests
{
    private const int Rows = 70, Cols = 300, Tokens = 500;

    private static (float[] W, float[] H) Problem(int seed)
    {
        var rng = new Random(seed);
        var x = RandomMatrices.CorrelatedInputs(rng, Tokens, Cols);
        for (int t = 0; t < Tokens; t++) x[t * Cols + 7] = x[t * Cols + 200] = 0f; // two dead columns
        var acc = new HessianAccumulator(Cols, 1);
        acc.Add(x, Tokens);
        return (RandomMatrices.Gaussian(rng, Rows * Cols), acc.ToHessian());
    }

    private static string Hash(QuantizedWeight q)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(MemoryMarshal.AsBytes(q.Dequantized.AsSpan()));
        sha.AppendData(q.Codes);
        sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{q.Method}|{q.Fallback}|{q.Damp:R}"));
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    private static void AssertHash(string expected, QuantizedWeight q) =>
        Assert.True(expected == Hash(q), $"GPTQ result hash {Hash(q)}, expected {expected}: the arithmetic changed");

    [Theory]
    [InlineData(QuantType.Ternary, false, 128, "848df24077b3f762")]
    [InlineData(QuantType.Ternary, true, 128, "bee3b713731d10ed")]
    [InlineData(QuantType.Int3, true, 64, "2384316c35a34dd4")]
    [InlineData(QuantType.Int4, false, 100, "df4a7682c198d117")]
    public void ResultIsUnchanged(QuantType type, bool actOrder, int blockSize, string expected)
    {
        var (w, h) = Problem(11);
        AssertHash(expected, Gptq.Quantize(w, Rows, Cols, h, new GptqOptions { Type = type, ActOrder = actOrder, BlockSize = blockSize, Threads = 2 }, Tokens));
    }

    [Fact]
    public void RaisedDampingResultIsUnchanged()
    {
        var (w, h) = Problem(12);
        h[5 * Cols + 5] = -h[5 * Cols + 5]; // indefinite: the first damping (0.01 for 4-bit) fails
        var q = Gptq.Quantize(w, Rows, Cols, h, new GptqOptions { Type = QuantType.Int4, ActOrder = true, Threads = 2 }, Tokens);
        Assert.True(q.Damp > 0.01, $"damp {q.Damp}: the retry path was not taken");
        AssertHash("720e7940661fae34", q);
    }

    [Fact]
    public void FallbacksAreUnchanged()
    {
        var (w, h) = Problem(13);
        var o = new GptqOptions { Type = QuantType.Ternary, ActOrder = true, Threads = 2 };
        AssertHash("d223673af12a852d", Gptq.Quantize(w, Rows, Cols, h, o, tokens: 0));
        var bad = (float[])h.Clone();
        bad[9 * Cols + 9] = float.NaN; // Cholesky fails at every damping: RTN on the original W (dead columns not zeroed)
        var q = Gptq.Quantize(w, Rows, Cols, bad, o, Tokens);
        Assert.NotNull(q.Fallback);
        AssertHash("c4d4a33f6994a534", q);
    }

    [Fact]
    public void BatchResultsAreUnchanged()
    {
        var (w0, h0) = Problem(14);
        var (w1, h1) = Problem(15);
        var r = GptqBatch.Quantize([.. w0, .. w1], [.. h0, .. h1], Rows, Cols, ["a", "b"], [Tokens, Tokens],
            new GptqOptions { Type = QuantType.Int2, ActOrder = true, Threads = 2 });
        AssertHash("18fd444d2db9e631", r.Experts[0]);
        AssertHash("cf59e90cac051a89", r.Experts[1]);
        // A subset read in place (the second expert only, as the compressor quantizes one type of a mixed group).
        var sub = GptqBatch.Quantize([.. w0, .. w1], [.. h0, .. h1], Rows, Cols, [1], ["b"], [Tokens],
            new GptqOptions { Type = QuantType.Int2, ActOrder = true, Threads = 2 });
        AssertHash("cf59e90cac051a89", Assert.Single(sub.Experts));
    }

    [Theory]
    [InlineData(256, 1024, false)] // rows >= cols/4: Q lends the triangular inverse its scratch
    [InlineData(256, 1024, true)]
    [InlineData(64, 1024, false)]  // rows < cols/4: the scratch is allocated
    public void AllocatesAtMostItsWorkingBytes(int rows, int cols, bool actOrder)
    {
        var rng = new Random(18);
        int tokens = 2 * cols;
        var acc = new HessianAccumulator(cols, 2);
        acc.Add(RandomMatrices.CorrelatedInputs(rng, tokens, cols), tokens);
        var h = acc.ToHessian();
        var w = RandomMatrices.Gaussian(rng, rows * cols);
        var o = new GptqOptions { Type = QuantType.Ternary, ActOrder = actOrder, Threads = 1 }; // one thread: all allocations on this one
        Gptq.Quantize(w, rows, cols, h, o, tokens); // JIT and first-use allocations out of the way
        long before = GC.GetAllocatedBytesForCurrentThread();
        var q = Gptq.Quantize(w, rows, cols, h, o, tokens);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(QuantMethod.Gptq, q.Method);
        long bound = Gptq.WorkingBytes(rows, cols, o.BlockSize);
        Assert.True(allocated <= bound, $"allocated {allocated} bytes, WorkingBytes {bound}");
        // With its inputs H and W, GPTQ holds about 8 bytes per H entry and 13 per weight (was 20 and 17 with its copies).
        long entries = (long)cols * cols, weights = (long)rows * cols;
        if (rows >= cols / 4)
            Assert.True(4 * entries + 4 * weights + allocated <= 8 * entries + 13 * weights + 13L * o.BlockSize * rows + (1 << 20),
                $"allocated {allocated} bytes: {(double)(allocated - 9 * weights) / entries:F2} per H entry beyond 9 per weight");
    }
}
