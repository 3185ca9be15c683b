using Qmoe.Compression;
using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.DecoderOnly;

/// <summary>
/// A decoder-only model as the sequential compressor walks it: one "decoder" stream of plain causal blocks,
/// every layer a block (full causal attention per calibration block; dense layers run whole). Owns the model.
/// </summary>
public sealed class DecoderOnlyCompressible(IDecoderOnlyModel model) : ICompressibleModel
{
    private const string StreamName = "decoder";

    public TensorStore Store => model.Store;
    public IExpertLayout Layout => model.ExpertLayout;
    public int NumExperts => model.NumExperts;
    public int Hidden => model.HiddenSize;
    public IReadOnlyList<ICompressibleBlock> Blocks { get; } = model.Layers.Select(l => (ICompressibleBlock)new Block(l)).ToArray();
    public float[] Embed(int[] ids) => model.Embed([ids]);

    public IReadOnlyList<CalibrationStream> Streams(CalibrationData calib)
    {
        if (calib.EncoderInput.Length != 0) throw new QmoeException("a decoder-only model calibrates on plain token blocks, not encoder inputs");
        foreach (var s in calib.DecoderInput) model.CheckLength(s.Length);
        return [new(StreamName, calib.DecoderInput, HessianMask: null)];
    }

    public void Dispose() => model.Dispose();

    private sealed class Block(IDecoderLayer layer) : ICompressibleBlock
    {
        public string Name => layer.Name;
        public string Stream => StreamName;
        public string? SparsePrefix => layer.MoePrefix;
        public IExperts Experts { get => layer.Experts; set => layer.Experts = value; }

        public void BeforeMlp(float[] h, SequenceBatch batch, int firstSequence, StreamActivations streams) =>
            layer.SelfAttention(h, batch, Enumerable.Range(0, batch.Count).Select(s => layer.NewCache(batch.Lengths[s])).ToArray());

        public void DenseMlp(float[] h, SequenceBatch batch) => layer.FeedForwardLayer(h, batch);
        public float[] MlpInput(float[] h, int tokens) => layer.MlpInput(h, tokens);
        public Routing Route(float[] x, SequenceBatch batch) => layer.Route(x, batch);
        public void AddMlp(float[] h, float[] x, int tokens, Routing routing) => layer.AddMlp(h, x, tokens, routing);
    }
}
