using Qmoe.IO;

namespace Qmoe.Compression;

/// <summary>
/// What a compression run reserves from <c>--memory-budget</c> before any work (activations get the rest, beyond it
/// they spill), besides <see cref="RuntimeBytes"/>: the larger of
/// <list type="bullet">
/// <item>one expert's GPTQ working set (<see cref="ExpertLayerQuantizer.WorkingSetBytes"/>), live while a layer's experts are quantized;</item>
/// <item>one block's pass over a chunk of calibration sequences: the block's non-expert weights (mapped, plus 4 bytes per
/// parameter for FP8 ones, dequantized on use) and the chunk's intermediate activations, bounded by one f32 per chunk
/// token and per output row of each of those matrices (q/k/v/o, MLA's low-rank projections, a dense MLP, the router,
/// shared experts) plus three hidden-width rows per token (the chunk's copy of h, its normed input and the MLP input).</item>
/// </list>
/// Both are dropped between the stages (<see cref="MemoryBudget.TrimResident"/>), so they are never resident together.
/// </summary>
public static class WorkingSet
{
    /// <summary>The .NET runtime, JIT-compiled code, thread stacks and the GC's slack between collections (the process
    /// before any work: 110–180 MiB resident).</summary>
    public const long RuntimeBytes = 256L << 20;

    /// <summary>Bytes to reserve (without the runtime's) and which part decides it; <paramref name="chunkTokens"/>:
    /// the most tokens one chunk of the pass can hold; <paramref name="blockSize"/>: GPTQ's column block.</summary>
    public static (long Bytes, string What) Of(ICompressibleModel model, int chunkTokens, int blockSize = 128)
    {
        long expert = ExpertLayerQuantizer.WorkingSetBytes(model.Layout, blockSize);
        long block = model.Blocks.Max(b => BlockPassBytes(model, b, chunkTokens));
        return expert >= block
            ? (expert, "one expert's Hessian, GPTQ working set and weights of its largest matrix")
            : (block, "one block's non-expert weights and one chunk's activations");
    }

    /// <summary>The most tokens one chunk of the sequential pass holds (<see cref="SparseLayerStep.ForChunks"/>): one
    /// sequence, or up to <see cref="CompressionOptions.ChunkSequences"/> sequences within <see cref="CompressionOptions.ChunkTokens"/>.</summary>
    public static int ChunkTokens(CalibrationData calib, CompressionOptions options)
    {
        int longest = calib.DecoderInput.Concat(calib.EncoderInput).Max(s => s.Length);
        long several = Math.Min((long)Math.Max(1, options.ChunkSequences) * longest, options.ChunkTokens);
        return (int)Math.Max(longest, several);
    }

    private static long BlockPassBytes(ICompressibleModel model, ICompressibleBlock block, long chunkTokens)
    {
        var experts = block.SparsePrefix is { } prefix
            ? Enumerable.Range(0, model.NumExperts).SelectMany(e => model.Layout.Kinds.Select(k => model.Layout.WeightName(prefix, e, k))).ToHashSet()
            : [];
        long weights = 0, outputRows = 0;
        foreach (var t in model.Store.TensorsUnder(block.Name + ".").Where(t => !experts.Contains(t.Name)))
        {
            weights += t.ByteLength + (t.DType == DType.F8_E4M3 ? 4 * t.ElementCount : 0);
            if (t.Shape.Length == 2) outputRows += t.Shape[0];
        }
        return weights + chunkTokens * (outputRows + 3L * model.Hidden) * sizeof(float);
    }
}
