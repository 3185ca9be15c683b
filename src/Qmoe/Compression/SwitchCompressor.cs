using System.Diagnostics;
using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Switch;

namespace Qmoe.Compression;

/// <summary>
/// The sequential pass over a Switch Transformer (SPEC §4): encoder blocks, then decoder blocks, each run on
/// the hidden states of all calibration samples (in chunks). A sparse block routes, fills the experts' list
/// buffers, quantizes its experts, and recomputes its outputs with the quantized experts, so every later
/// block calibrates on the inputs the compressed model will actually see. The decoder's cross-attention
/// reads the quantized encoder's output.
/// </summary>
public sealed class SwitchCompressor : IModelCompressor
{
    private readonly SwitchModel _model;
    private readonly CompressionOptions _options;
    private readonly MemoryBudget _budget;
    private readonly CompressionWorkDir _work;
    private readonly Action<PipelineProgress>? _progress;
    private readonly SwitchExpertLayout _layout;

    public SwitchCompressor(SwitchModel model, CompressionOptions options, MemoryBudget budget, CompressionWorkDir work,
        Action<PipelineProgress>? progress)
    {
        _model = model; _options = options; _budget = budget; _work = work; _progress = progress;
        _layout = new SwitchExpertLayout(model.Config.DModel, model.Config.DFf);
    }

    public IExpertLayout Layout => _layout;
    public TensorStore Store => _model.Store;
    public int NumExperts => _model.Config.NumExperts;
    /// <summary>Disposes the model (the compressor owns it).</summary>
    public void Dispose() => _model.Dispose();

    /// <summary>Sparse blocks' MLP prefixes in processing order (the layer files the run produces).</summary>
    public IEnumerable<string> SparsePrefixes => _model.Blocks.Where(b => b.IsSparse).Select(b => b.MlpPrefix);

    /// <summary>Runs (or resumes) every block; finished layers are in the work directory's layer files.</summary>
    public List<LayerReport> Run(CalibrationData calib, string fingerprint, Dictionary<string, double> stageSeconds, CancellationToken ct)
    {
        int d = _model.Config.DModel;
        var encBatch = new SequenceBatch(calib.EncoderInput.Select(s => s.Length).ToArray());
        var decBatch = new SequenceBatch(calib.DecoderInput.Select(s => s.Length).ToArray());
        using var enc = new ActivationBuffer(encBatch.Tokens, d, _budget, "encoder-hidden");
        using var dec = new ActivationBuffer(decBatch.Tokens, d, _budget, "decoder-hidden");
        var buffers = new Dictionary<string, ActivationBuffer> { ["encoder"] = enc, ["decoder"] = dec };
        var checkpoint = new PipelineCheckpoint(_work.Path);
        int Le = _model.Encoder.Length, total = Le + _model.Decoder.Length;

        int next = 0;
        if (_options.Resume && checkpoint.Exists)
        {
            next = checkpoint.Load(fingerprint, buffers);
            Report(next, total, "resume", $"resuming at block {next} of {total}");
        }
        else
        {
            FillEmbeddings(enc, calib.EncoderInput);
            FillEmbeddings(dec, calib.DecoderInput);
        }

        for (int gb = next; gb < total; gb++)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            bool isEncoder = gb < Le;
            var block = isEncoder ? _model.Encoder[gb] : _model.Decoder[gb - Le];
            Report(gb, total, isEncoder ? "encoder" : "decoder", block.Name);
            if (isEncoder) RunBlock(block, enc, encBatch, calib.EncoderHessianMask, null, null, ct);
            else RunBlock(block, dec, decBatch, calib.DecoderHessianMask, enc, encBatch, ct);
            if (gb == Le - 1) // encoder done: its final norm gives the (quantized) encoder output for cross-attention
                for (long r = 0; r < enc.Rows; r += 256)
                {
                    int n = (int)Math.Min(256, enc.Rows - r);
                    _model.EncoderFinalNorm(enc.Slice(r, n), n);
                }
            checkpoint.AfterBlock(fingerprint, gb, buffers, stageSeconds, isEncoder ? "encoder" : "decoder", sw.Elapsed, _work);
        }
        return SparsePrefixes.Select(p => LayerResultFile.ReadReport(_work.LayerFile(p))).ToList();
    }

    private void Report(int block, int blocks, string stage, string message) =>
        _progress?.Invoke(new PipelineProgress(block, blocks, stage, message));

    private void FillEmbeddings(ActivationBuffer h, int[][] ids)
    {
        long row = 0;
        foreach (var s in ids)
        {
            _model.Embed(s).CopyTo(h.Slice(row, s.Length));
            row += s.Length;
        }
    }

    /// <summary>Runs one block over all samples; sparse blocks quantize their experts in the middle.</summary>
    private void RunBlock(SwitchBlock block, ActivationBuffer h, SequenceBatch all, bool[][]? hessianMask,
        ActivationBuffer? encoderOut, SequenceBatch? encBatch, CancellationToken ct)
    {
        int d = _model.Config.DModel;
        ActivationBuffer? x = block.IsSparse ? new ActivationBuffer(all.Tokens, d, _budget, "mlp-input") : null;
        try
        {
            var lists = block.IsSparse ? new ExpertListBuffers(_model.Config.NumExperts, x!) : null;
            // Pass 1: attention (+ dense FF, or routing into the list buffers).
            ForChunks(all, h, (hc, batch, seq0, row0) =>
            {
                ct.ThrowIfCancellationRequested();
                if (!block.IsDecoder) block.SelfAttention(hc, batch, _model.EncoderBias, caches: null);
                else
                {
                    var caches = Enumerable.Range(0, batch.Count).Select(_ => new KvCache(_model.Config.InnerDim)).ToArray();
                    block.SelfAttention(hc, batch, _model.DecoderBias, caches);
                    var cross = Enumerable.Range(seq0, batch.Count).Select(s =>
                        block.CrossKv(encoderOut!.Slice(encBatch!.Offsets[s], encBatch.Lengths[s]), encBatch.Lengths[s])).ToArray();
                    block.CrossAttention(hc, batch, cross);
                }
                if (!block.IsSparse) { block.FeedForwardLayer(hc, batch, _model.UseCapacity); return; }
                var xc = block.MlpInput(hc, batch.Tokens);
                xc.CopyTo(x!.Slice(row0, batch.Tokens));
                var routing = block.Route(xc, batch, _model.UseCapacity);
                lists!.Append(routing, batch, row0, hessianMask, seq0);
            });
            if (!block.IsSparse) return;

            // Quantize this layer's experts, then pass 2: the MLP with the quantized experts.
            using var layer = SparseLayerStep.Quantize(block.MlpPrefix, _layout, _model.Store, lists!, _options, _budget, _work, _progress, ct);
            var original = block.Experts;
            block.Experts = layer.CreateExperts();
            try
            {
                ForChunks(all, h, (hc, batch, _, row0) =>
                {
                    var xc = x!.Slice(row0, batch.Tokens).ToArray();
                    block.AddMlp(hc, xc, batch.Tokens, block.Route(xc, batch, _model.UseCapacity));
                });
            }
            finally { block.Experts = original; }
        }
        finally { x?.Dispose(); }
    }

    private void ForChunks(SequenceBatch all, ActivationBuffer h, SparseLayerStep.ChunkAction action) =>
        SparseLayerStep.ForChunks(all, h, _options.ChunkSequences, action);
}
