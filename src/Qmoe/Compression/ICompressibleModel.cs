using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Compression;

/// <summary>
/// A model as the <see cref="SequentialCompressor"/> walks it (SPEC §4): the activation streams that the
/// calibration data becomes (Switch: "encoder" and "decoder"; decoder-only: "decoder"), and the blocks, in
/// processing order, each running on one stream. A family supplies this from its <c>IModelFamily.OpenForCompression</c>.
/// </summary>
public interface ICompressibleModel : IDisposable
{
    /// <summary>The checkpoint being compressed (memory-mapped).</summary>
    TensorStore Store { get; }
    IExpertLayout Layout { get; }
    /// <summary>Experts per sparse layer.</summary>
    int NumExperts { get; }
    /// <summary>Width of every stream's hidden states (and of the expert input).</summary>
    int Hidden { get; }
    /// <summary>Checks the calibration data suits the model and splits it into streams, in the order they are filled.</summary>
    IReadOnlyList<CalibrationStream> Streams(CalibrationData calib);
    /// <summary>Token embeddings [ids.Length, Hidden] of one sequence: a stream's hidden states before its first block.</summary>
    float[] Embed(int[] ids);
    /// <summary>All blocks in processing order; a block's outputs feed the next block of its stream.</summary>
    IReadOnlyList<ICompressibleBlock> Blocks { get; }
}

/// <summary>One activation stream of the calibration data: its sequences and which positions may enter the Hessians (null: all).</summary>
public sealed record CalibrationStream(string Name, int[][] Sequences, bool[][]? HessianMask);

/// <summary>The streams' hidden states [tokens of all sequences, Hidden] and layouts, as the blocks see them.</summary>
public sealed class StreamActivations(IReadOnlyDictionary<string, ActivationBuffer> buffers, IReadOnlyDictionary<string, SequenceBatch> batches)
{
    public ActivationBuffer Buffer(string stream) => buffers[stream];
    public SequenceBatch Batch(string stream) => batches[stream];
}

/// <summary>
/// One block of the sequential pass. On a chunk of its stream's sequences (hidden states h [batch.Tokens, Hidden],
/// updated in place) the compressor runs <see cref="BeforeMlp"/>, then for a dense block <see cref="DenseMlp"/>;
/// for a sparse block it takes <see cref="MlpInput"/>, routes it into the experts' list buffers, quantizes the
/// experts, swaps them in and adds the MLP with them (<see cref="AddMlp"/>).
/// </summary>
public interface ICompressibleBlock
{
    /// <summary>e.g. "encoder.block.1", "model.layers.0" (progress messages).</summary>
    string Name { get; }
    /// <summary>The stream the block runs on; also its stage in progress and timings.</summary>
    string Stream { get; }
    /// <summary>Tensor prefix of the block's sparse MoE layer (its layer file), or null for a dense block.</summary>
    string? SparsePrefix { get; }
    /// <summary>The sub-layers before the feed-forward (self-, cross-attention); <paramref name="firstSequence"/> indexes the stream's sequences.</summary>
    void BeforeMlp(float[] h, SequenceBatch batch, int firstSequence, StreamActivations streams);
    /// <summary>A dense block's feed-forward sub-layer.</summary>
    void DenseMlp(float[] h, SequenceBatch batch);
    /// <summary>The normed input x [tokens, Hidden] of the sparse feed-forward.</summary>
    float[] MlpInput(float[] h, int tokens);
    Routing Route(float[] x, SequenceBatch batch);
    /// <summary>The sparse layer's experts (swapped for the quantized ones during the second pass).</summary>
    IExperts Experts { get; set; }
    /// <summary>h += moe(x) for the normed input x and its routing (with any shared parts of the layer).</summary>
    void AddMlp(float[] h, float[] x, int tokens, Routing routing);
    /// <summary>After both passes over all chunks, before the checkpoint (e.g. the encoder's final norm).</summary>
    void AfterBlock(StreamActivations streams) { }
}

