using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Compression;

/// <summary>
/// The family-independent parts of the sequential pass: running calibration sequences through a layer in
/// chunks, and turning a sparse layer's filled list buffers into its quantized layer file plus the
/// dequantized experts that the layer's outputs are recomputed with.
/// </summary>
public static class SparseLayerStep
{
    public delegate void ChunkAction(float[] h, SequenceBatch batch, int firstSequence, long firstRow);

    /// <summary>Runs <paramref name="action"/> on chunks of consecutive sequences (at most <paramref name="chunkSequences"/>,
    /// and at most <paramref name="chunkTokens"/> tokens unless one sequence is longer), copying their hidden rows in and
    /// out of <paramref name="h"/>.</summary>
    public static void ForChunks(SequenceBatch all, ActivationBuffer h, int chunkSequences, int chunkTokens, ChunkAction action)
    {
        for (int s0 = 0, s1; s0 < all.Count; s0 = s1)
        {
            long tokens = all.Lengths[s0];
            for (s1 = s0 + 1; s1 < all.Count && s1 - s0 < chunkSequences && tokens + all.Lengths[s1] <= chunkTokens; s1++)
                tokens += all.Lengths[s1];
            var batch = new SequenceBatch(all.Lengths[s0..s1]);
            long row0 = all.Offsets[s0];
            var hc = h.Slice(row0, batch.Tokens).ToArray();
            action(hc, batch, s0, row0);
            hc.CopyTo(h.Slice(row0, batch.Tokens));
            h.Budget.TrimResident(); // spilled and checkpoint pages touched by this chunk leave the resident set
        }
    }

    /// <summary>
    /// Quantizes one sparse layer's experts from <paramref name="lists"/>, writes its layer file (trits and scales,
    /// or with fake-quant the dequantized weights in the checkpoint's dtype when exact), and returns the
    /// dequantized experts (dispose when the layer's outputs are recomputed).
    /// </summary>
    public static ExpertLayerQuantizer.QuantizedLayer Quantize(string prefix, IExpertLayout layout, TensorStore store,
        ExpertListBuffers lists, CompressionOptions options, MemoryBudget budget, CompressionWorkDir work,
        Action<PipelineProgress>? progress, CancellationToken ct)
    {
        var dtype = store.Info(layout.WeightName(prefix, 0, layout.Stages[0][0])).DType;
        if (dtype == DType.F8_E4M3) dtype = DType.BF16; // FP8 checkpoints: ternary values (bf16 grid) are exact in bf16
        using var output = new LayerResultFile(work.LayerFile(prefix), layout, lists.Experts,
            dense: options.FakeQuant, denseType: options.AllTernary ? dtype : DType.F32,
            typeOf: (e, kind) => options.TypeOf(layout.WeightName(prefix, e, kind)));
        var quantizer = new ExpertLayerQuantizer(options, budget, m => progress?.Invoke(new PipelineProgress(-1, -1, "quantize", m)));
        budget.Lap("calibrate"); // the block's forward pass up to the experts: attention, routing, list buffers
        var (layer, report) = quantizer.Run(prefix, layout, store, lists, output, ct);
        budget.Lap("quantize");
        try { output.Complete(report); }
        catch { layer.Dispose(); throw; }
        return layer;
    }
}
