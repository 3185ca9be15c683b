using System.Diagnostics;
using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Mixtral;

namespace Qmoe.Compression;

/// <summary>
/// The sequential pass over a Mixtral decoder (SPEC §4 for decoder-only models): each layer runs on the
/// hidden states of all calibration blocks (in chunks, full causal attention per block), routes every token
/// to its top-k experts — a token contributes its MLP input to the list buffer of each of its k experts —
/// quantizes the layer's experts, and recomputes the layer's output with the quantized experts, so later
/// layers calibrate on what the compressed model will see. A checkpoint after every layer allows resuming.
/// </summary>
public sealed class MixtralCompressor : IModelCompressor
{
    private readonly MixtralModel _model;
    private readonly CompressionOptions _options;
    private readonly MemoryBudget _budget;
    private readonly CompressionWorkDir _work;
    private readonly Action<PipelineProgress>? _progress;
    private readonly MixtralExpertLayout _layout;

    /// <summary>Takes ownership of <paramref name="model"/>.</summary>
    public MixtralCompressor(MixtralModel model, CompressionOptions options, MemoryBudget budget, CompressionWorkDir work,
        Action<PipelineProgress>? progress)
    {
        if (options.Premask) throw new QmoeException("--premask applies to span-corrupted (encoder-decoder) calibration data, not to a decoder-only model");
        _model = model; _options = options; _budget = budget; _work = work; _progress = progress;
        _layout = new MixtralExpertLayout(model.Config.HiddenSize, model.Config.IntermediateSize);
    }

    public TensorStore Store => _model.Store;
    public IExpertLayout Layout => _layout;
    public int NumExperts => _model.Config.NumExperts;
    public IEnumerable<string> SparsePrefixes => _model.Layers.Select(l => l.MoePrefix);

    public List<LayerReport> Run(CalibrationData calib, string fingerprint, Dictionary<string, double> stageSeconds, CancellationToken ct)
    {
        if (calib.EncoderInput.Length != 0) throw new QmoeException("a decoder-only model calibrates on plain token blocks, not encoder inputs");
        foreach (var s in calib.DecoderInput) _model.Config.CheckLength(s.Length);
        var all = new SequenceBatch(calib.DecoderInput.Select(s => s.Length).ToArray());
        using var h = new ActivationBuffer(all.Tokens, _model.Config.HiddenSize, _budget, "hidden");
        var buffers = new Dictionary<string, ActivationBuffer> { ["decoder"] = h };
        var checkpoint = new PipelineCheckpoint(_work.Path);
        int total = _model.Layers.Length, next = 0;
        if (_options.Resume && checkpoint.Exists)
        {
            next = checkpoint.Load(fingerprint, buffers);
            Report(next, total, "resume", $"resuming at block {next} of {total}");
        }
        else
        {
            long row = 0;
            foreach (var s in calib.DecoderInput)
            {
                _model.Embed(new[] { s }).CopyTo(h.Slice(row, s.Length));
                row += s.Length;
            }
        }

        for (int i = next; i < total; i++)
        {
            ct.ThrowIfCancellationRequested();
            var sw = Stopwatch.StartNew();
            Report(i, total, "decoder", _model.Layers[i].Name);
            RunLayer(_model.Layers[i], h, all, ct);
            checkpoint.AfterBlock(fingerprint, i, buffers, stageSeconds, "decoder", sw.Elapsed, _work);
        }
        return SparsePrefixes.Select(p => LayerResultFile.ReadReport(_work.LayerFile(p))).ToList();
    }

    private void Report(int block, int blocks, string stage, string message) =>
        _progress?.Invoke(new PipelineProgress(block, blocks, stage, message));

    /// <summary>Attention and routing over all blocks, then quantization, then the MoE with the quantized experts.</summary>
    private void RunLayer(MixtralLayer layer, ActivationBuffer h, SequenceBatch all, CancellationToken ct)
    {
        var cfg = _model.Config;
        using var x = new ActivationBuffer(all.Tokens, cfg.HiddenSize, _budget, "mlp-input");
        var lists = new ExpertListBuffers(cfg.NumExperts, x);
        SparseLayerStep.ForChunks(all, h, _options.ChunkSequences, (hc, batch, _, row0) =>
        {
            ct.ThrowIfCancellationRequested();
            var caches = Enumerable.Range(0, batch.Count).Select(s => new KvCache(cfg.KvWidth, batch.Lengths[s])).ToArray();
            layer.SelfAttention(hc, batch, caches);
            var xc = layer.MlpInput(hc, batch.Tokens);
            xc.CopyTo(x.Slice(row0, batch.Tokens));
            var routing = layer.Route(xc, batch);
            lists.Append(routing, batch, row0, hessianMask: null, seq0: 0);
        });

        using var quantized = SparseLayerStep.Quantize(layer.MoePrefix, _layout, _model.Store, lists, _options, _budget, _work, _progress, ct);
        var original = layer.Experts;
        layer.Experts = quantized.CreateExperts();
        try
        {
            SparseLayerStep.ForChunks(all, h, _options.ChunkSequences, (hc, batch, _, row0) =>
            {
                var xc = x.Slice(row0, batch.Tokens).ToArray();
                layer.AddMlp(hc, xc, batch.Tokens, layer.Route(xc, batch));
            });
        }
        finally { layer.Experts = original; }
    }

    public void Dispose() => _model.Dispose();
}
