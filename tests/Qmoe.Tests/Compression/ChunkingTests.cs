using Qmoe.Compression;
using Qmoe.Models.Layers;

namespace Qmoe.Tests.Compression;

/// <summary>How the sequential pass cuts calibration sequences into chunks, and that the cut does not change the output.</summary>
public class ChunkingTests
{
    [Theory]
    [InlineData(16, 4096)]
    [InlineData(3, 4096)]
    [InlineData(16, 100)]
    [InlineData(16, 1)]
    public void ChunksCoverEverySequenceOnceWithinTheirLimits(int chunkSequences, int chunkTokens)
    {
        int[] lengths = [40, 7, 130, 64, 64, 1, 99, 33, 12, 300, 5];
        var all = new SequenceBatch(lengths);
        using var tmp = Paths.Temp();
        using var h = new ActivationBuffer(all.Tokens, 3, new MemoryBudget(1L << 30, tmp.File("spill")), "h");
        for (long r = 0; r < all.Tokens; r++) h.Slice(r, 1).Fill(r);
        int next = 0;
        SparseLayerStep.ForChunks(all, h, chunkSequences, chunkTokens, (hc, batch, seq0, row0) =>
        {
            Assert.Equal(next, seq0);
            Assert.Equal(all.Offsets[seq0], row0);
            Assert.InRange(batch.Count, 1, chunkSequences);
            Assert.True(batch.Count == 1 || batch.Tokens <= chunkTokens, $"{batch.Count} sequences of {batch.Tokens} tokens");
            Assert.Equal(lengths[seq0..(seq0 + batch.Count)], batch.Lengths);
            Assert.Equal((float)row0, hc[0]); // the chunk's own rows
            for (int i = 0; i < hc.Length; i++) hc[i] += 1; // written back
            next += batch.Count;
        });
        Assert.Equal(lengths.Length, next);
        for (long r = 0; r < all.Tokens; r++) Assert.Equal(r + 1f, h.Slice(r, 1)[0]);
    }

    /// <summary>One sequence per chunk against the default chunks: the same routing (tokens per expert) and the same
    /// quantization up to rounding. Not bitwise: products of a few rows take MatMul's dot path, larger ones the GEMM,
    /// so a short chunk's activations can differ in the last bits (measured: the decoder's relative errors in the 7th digit).</summary>
    [Fact]
    public void ChunkSizeChangesTheOutputOnlyByRounding()
    {
        using var tmp = Paths.Temp();
        var calib = CalibrationLoader.Load(Paths.TinyModel, Paths.CalibrationText, null, null, 12, premask: false);
        var a = CompressionPipeline.Run(Paths.TinyModel, tmp.File("default"), calib, new CompressionOptions()).Report;
        var b = CompressionPipeline.Run(Paths.TinyModel, tmp.File("one"), calib, new CompressionOptions { ChunkTokens = 1 }).Report;
        Assert.Equal(a.Layers.Count, b.Layers.Count);
        foreach (var (x, y) in a.Layers.Zip(b.Layers))
        {
            Assert.Equal(x.Name, y.Name);
            Assert.Equal(x.TokensPerExpert, y.TokensPerExpert);
            Assert.True(Math.Abs(x.RelativeError - y.RelativeError) <= 1e-2 * x.RelativeError, $"{x.Name}: {x.RelativeError} vs {y.RelativeError}");
            Assert.True(Math.Abs(x.ZeroFraction - y.ZeroFraction) <= 1e-3, $"{x.Name}: {x.ZeroFraction} vs {y.ZeroFraction}");
        }
    }
}
