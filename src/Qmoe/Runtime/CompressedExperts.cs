using Qmoe.Codec;
using Qmoe.Kernels;
using Qmoe.Models.Layers;

namespace Qmoe.Runtime;

/// <summary>
/// A compressed model directory opened for inference: the memory-mapped codes (structure validated and
/// checksums of the expert tensors checked at open), the dictionary turned into
/// the kernel's decode table, and the CPU SIMD kernel with its worker threads. <see cref="Weight"/> hands out
/// expert matrices for a model family's expert factory.
/// </summary>
public sealed class CompressedExperts : IDisposable
{
    private readonly RowParallel _parallel;

    public CompressedModel Model { get; }
    public ICompressedMatVec Kernel { get; }
    /// <summary>The kernel of n-bit experts (issue 16).</summary>
    public INBitMatVec NBitKernel { get; }

    public CompressedExperts(string dir)
    {
        Model = CompressedModel.Open(dir);
        try { CompressedModelVerifier.VerifyExpertTensors(Model); }
        catch { Model.Dispose(); throw; }
        _parallel = new RowParallel(Threads.Count);
        Kernel = new SimdCompressedMatVec(DecodeTable.FromDictionary(Model.Dictionary.Entries), _parallel);
        NBitKernel = new SimdNBitMatVec(_parallel);
    }

    /// <summary>Expert <paramref name="expert"/>'s matrix <paramref name="kind"/> of the sparse layer <paramref name="prefix"/>.</summary>
    public IWeightMatrix Weight(string prefix, string kind, int expert)
    {
        var group = Model.Group(prefix, kind);
        return group.NBit?.IsNBit(expert) == true
            ? new NBitWeight(Model, group, expert, NBitKernel)
            : new CompressedWeight(Model, group, expert, Kernel);
    }

    public void Dispose()
    {
        _parallel.Dispose();
        Model.Dispose();
    }
}
