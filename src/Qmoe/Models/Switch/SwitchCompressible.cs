using Qmoe.Compression;
using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Switch;

/// <summary>
/// A Switch Transformer as the sequential compressor walks it: the encoder blocks on the "encoder" stream, then
/// the decoder blocks on the "decoder" stream. The last encoder block applies the encoder's final norm to its
/// stream, so the decoder's cross-attention reads the quantized encoder's output. Owns the model.
/// </summary>
public sealed class SwitchCompressible : ICompressibleModel
{
    private const string EncoderStream = "encoder", DecoderStream = "decoder";
    private readonly SwitchModel _model;

    public SwitchCompressible(SwitchModel model)
    {
        _model = model;
        var cfg = model.Config;
        Layout = new SwitchExpertLayout(cfg.DModel, cfg.DFf);
        Blocks = model.Encoder.Select((b, i) => new Block(model, b, i == model.Encoder.Length - 1))
            .Concat(model.Decoder.Select(b => new Block(model, b, false))).ToArray();
    }

    public TensorStore Store => _model.Store;
    public IExpertLayout Layout { get; }
    public int NumExperts => _model.Config.NumExperts;
    public int Hidden => _model.Config.DModel;
    public IReadOnlyList<ICompressibleBlock> Blocks { get; }
    public float[] Embed(int[] ids) => _model.Embed(ids);

    public IReadOnlyList<CalibrationStream> Streams(CalibrationData calib) =>
    [
        new(EncoderStream, calib.EncoderInput, calib.EncoderHessianMask),
        new(DecoderStream, calib.DecoderInput, calib.DecoderHessianMask),
    ];

    public void Dispose() => _model.Dispose();

    private sealed class Block(SwitchModel model, SwitchBlock block, bool lastEncoderBlock) : ICompressibleBlock
    {
        public string Name => block.Name;
        public string Stream => block.IsDecoder ? DecoderStream : EncoderStream;
        public string? SparsePrefix => block.IsSparse ? block.MlpPrefix : null;
        public IExperts Experts { get => block.Experts!; set => block.Experts = value; }

        public void BeforeMlp(float[] h, SequenceBatch batch, int firstSequence, StreamActivations streams)
        {
            if (!block.IsDecoder) { block.SelfAttention(h, batch, model.EncoderBias, caches: null); return; }
            var caches = Enumerable.Range(0, batch.Count).Select(_ => new KvCache(model.Config.InnerDim)).ToArray();
            block.SelfAttention(h, batch, model.DecoderBias, caches);
            var enc = streams.Buffer(EncoderStream);
            var encBatch = streams.Batch(EncoderStream);
            var cross = Enumerable.Range(firstSequence, batch.Count).Select(s =>
                block.CrossKv(enc.Slice(encBatch.Offsets[s], encBatch.Lengths[s]), encBatch.Lengths[s])).ToArray();
            block.CrossAttention(h, batch, cross);
        }

        public void DenseMlp(float[] h, SequenceBatch batch) => block.FeedForwardLayer(h, batch, model.UseCapacity);
        public float[] MlpInput(float[] h, int tokens) => block.MlpInput(h, tokens);
        public Routing Route(float[] x, SequenceBatch batch) => block.Route(x, batch, model.UseCapacity);
        public void AddMlp(float[] h, float[] x, int tokens, Routing routing) => block.AddMlp(h, x, tokens, routing);

        /// <summary>Encoder done: its final norm gives the (quantized) encoder output for cross-attention.</summary>
        public void AfterBlock(StreamActivations streams)
        {
            if (!lastEncoderBlock) return;
            var enc = streams.Buffer(EncoderStream);
            for (long r = 0; r < enc.Rows; r += 256)
            {
                int n = (int)Math.Min(256, enc.Rows - r);
                model.EncoderFinalNorm(enc.Slice(r, n), n);
            }
        }
    }
}
