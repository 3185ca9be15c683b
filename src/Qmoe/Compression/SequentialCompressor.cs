using System.Diagnostics;
using Qmoe.Models.Layers;

namespace Qmoe.Compression;

/// <summary>
/// The sequential pass (SPEC §4) over the blocks a family supplies: every block runs on the hidden states of
/// all calibration samples of its stream (in chunks). A sparse block fills its experts' list buffers with the
/// MLP inputs its router sends them (a token routed to k experts is in k lists), quantizes the experts, and
/// recomputes its outputs with the quantized experts, so every later block calibrates on the inputs the
/// compressed model will see. A checkpoint after every block (all streams' hidden states) allows resuming.
/// </summary>
public sealed class SequentialCompressor(ICompressibleModel model, CompressionOptions options, MemoryBudget budget,
    CompressionWorkDir work, Action<PipelineProgress>? progress) : IDisposable
{
    public ICompressibleModel Model => model;

    /// <summary>Sparse blocks' tensor prefixes in processing order (the layer files the run produces).</summary>
    public IEnumerable<string> SparsePrefixes => model.Blocks.Select(b => b.SparsePrefix).OfType<string>();

    /// <summary>Disposes the model (the compressor owns it).</summary>
    public void Dispose() => model.Dispose();

    /// <summary>Runs (or resumes) every block; finished layers are in the work directory's layer files. Returns their reports.</summary>
    public List<LayerReport> Run(CalibrationData calib, string fingerprint, Dictionary<string, double> stageSeconds, CancellationToken ct)
    {
        var streams = model.Streams(calib);
        var buffers = new Dictionary<string, ActivationBuffer>();
        var batches = new Dictionary<string, SequenceBatch>();
        try
        {
            foreach (var s in streams)
            {
                var batch = new SequenceBatch(s.Sequences.Select(q => q.Length).ToArray());
                batches[s.Name] = batch;
                buffers[s.Name] = new ActivationBuffer(batch.Tokens, model.Hidden, budget, $"{s.Name}-hidden");
            }
            var activations = new StreamActivations(buffers, batches);
            var checkpoint = new PipelineCheckpoint(work.Path);
            var blocks = model.Blocks;
            int total = blocks.Count, next = 0;
            if (options.Resume && checkpoint.Exists)
            {
                next = checkpoint.Load(fingerprint, buffers);
                Report(next, total, "resume", $"resuming at block {next} of {total}");
            }
            else
                foreach (var s in streams) FillEmbeddings(buffers[s.Name], s.Sequences);

            for (int i = next; i < total; i++)
            {
                ct.ThrowIfCancellationRequested();
                var sw = Stopwatch.StartNew();
                var block = blocks[i];
                Report(i, total, block.Stream, block.Name);
                var stream = streams.First(s => s.Name == block.Stream);
                // Nothing reads the last block's outputs: its sparse layer is quantized but not recomputed, and its
                // checkpoint needs no hidden states (a Mixtral-8x7B layer with 128 x 2048 calibration tokens: ~90 TMAC of recompute).
                bool last = i == total - 1;
                RunBlock(block, buffers[block.Stream], batches[block.Stream], stream.HessianMask, activations, recompute: !last, ct);
                block.AfterBlock(activations);
                checkpoint.AfterBlock(fingerprint, i, buffers, saveBuffers: !last, stageSeconds, block.Stream, sw.Elapsed, work);
            }
        }
        finally { foreach (var b in buffers.Values) b.Dispose(); }
        return SparsePrefixes.Select(p => LayerResultFile.ReadReport(work.LayerFile(p))).ToList();
    }

    private void Report(int block, int blocks, string stage, string message) =>
        progress?.Invoke(new PipelineProgress(block, blocks, stage, message));

    private void FillEmbeddings(ActivationBuffer h, int[][] sequences)
    {
        long row = 0;
        foreach (var s in sequences)
        {
            model.Embed(s).CopyTo(h.Slice(row, s.Length));
            h.TrimRows(row, s.Length); // a spilled buffer's written pages leave the resident set as they are filled
            row += s.Length;
        }
        budget.TrimResident(); // and the embedding table's pages
    }

    /// <summary>Runs one block over all samples of its stream; a sparse block quantizes its experts between its two
    /// passes (the second, which adds the MLP with the quantized experts, only when <paramref name="recompute"/>).</summary>
    private void RunBlock(ICompressibleBlock block, ActivationBuffer h, SequenceBatch all, bool[][]? hessianMask,
        StreamActivations streams, bool recompute, CancellationToken ct)
    {
        string? prefix = block.SparsePrefix;
        ActivationBuffer? x = prefix != null ? new ActivationBuffer(all.Tokens, model.Hidden, budget, "mlp-input") : null;
        try
        {
            var lists = x != null ? new ExpertListBuffers(model.NumExperts, x) : null;
            // Pass 1: the sub-layers before the feed-forward, then the dense feed-forward or routing into the list buffers.
            ForChunks(all, h, block.Name, "forward", (hc, batch, seq0, row0) =>
            {
                ct.ThrowIfCancellationRequested();
                block.BeforeMlp(hc, batch, seq0, streams);
                if (x == null) { block.DenseMlp(hc, batch); return; }
                var xc = block.MlpInput(hc, batch.Tokens);
                xc.CopyTo(x.Slice(row0, batch.Tokens));
                lists!.Append(block.Route(xc, batch), batch, row0, hessianMask, seq0);
            });
            if (x == null) return;

            // Quantize this layer's experts, then pass 2: the MLP with the quantized experts.
            using var layer = SparseLayerStep.Quantize(prefix!, model.Layout, model.Store, lists!, options, budget, work, progress, ct);
            if (!recompute) return;
            var original = block.Experts;
            block.Experts = layer.CreateExperts();
            try
            {
                ForChunks(all, h, block.Name, "recompute", (hc, batch, _, row0) =>
                {
                    var xc = x.Slice(row0, batch.Tokens).ToArray();
                    block.AddMlp(hc, xc, batch.Tokens, block.Route(xc, batch));
                });
            }
            finally { block.Experts = original; }
        }
        finally { x?.Dispose(); }
    }

    /// <summary>Runs <paramref name="action"/> on the chunks of <paramref name="all"/>, reporting progress at most every
    /// 10 s (a pass over 128 x 2048 tokens at Mixtral-8x7B width takes minutes).</summary>
    private void ForChunks(SequenceBatch all, ActivationBuffer h, string blockName, string pass, SparseLayerStep.ChunkAction action)
    {
        var sw = Stopwatch.StartNew();
        var reported = TimeSpan.Zero;
        SparseLayerStep.ForChunks(all, h, Math.Max(1, options.ChunkSequences), options.ChunkTokens, (hc, batch, seq0, row0) =>
        {
            action(hc, batch, seq0, row0);
            int done = seq0 + batch.Count;
            if (sw.Elapsed - reported < TimeSpan.FromSeconds(10) || done == all.Count) return;
            reported = sw.Elapsed;
            var eta = TimeSpan.FromSeconds(sw.Elapsed.TotalSeconds / done * (all.Count - done));
            Report(-1, -1, pass, $"{blockName} {pass}: {done} of {all.Count} sequences, ETA {eta:hh\\:mm\\:ss}");
        });
    }
}
