using Qmoe.Codec;
using Qmoe.Kernels;
using Qmoe.Models.Layers;

namespace Qmoe.Runtime;

/// <summary>
/// A compressed model directory opened for inference: the memory-mapped codes (structure validated and
/// checksums of the expert tensors checked at open), the dictionary turned into
/// the kernel's decode table, and the CPU SIMD kernel with its worker threads (or a kernel from
/// <c>kernel</c>, e.g. a GPU one, which this then owns). <see cref="Weight"/> hands out expert matrices for a model
/// family's expert factory. The kernel is reentrant, so several threads may run the model at once.
/// </summary>
public sealed class CompressedExperts : IDisposable
{
    private readonly RowParallel? _parallel;

    public CompressedModel Model { get; }
    public ICompressedMatVec Kernel { get; }
    /// <summary>Decodes rows of ternary experts for products of more input rows than the fused kernel takes.</summary>
    public TernaryRowDecoder Decoder { get; }
    /// <summary>The kernel of bit-packed n-bit experts (issue 16).</summary>
    public INBitMatVec? NBitKernel { get; }
    /// <summary>The kernel and row decoder of coded 2-bit experts (the model's four-level dictionary), on the CPU.</summary>
    public (ICompressedMatVec Kernel, TernaryRowDecoder Decoder)? Coded { get; }

    /// <param name="dir">the compressed model directory</param>
    /// <param name="kernel">builds the kernel from the model's decode table; null: the CPU kernel on <see cref="Threads.Count"/> threads</param>
    public CompressedExperts(string dir, Func<DecodeTable, ICompressedMatVec>? kernel = null)
    {
        Model = CompressedModel.Open(dir);
        try { CompressedModelVerifier.VerifyExpertTensors(Model); }
        catch { Model.Dispose(); throw; }
        var table = DecodeTable.FromDictionary(Model.Dictionary.Entries);
        Decoder = new TernaryRowDecoder(table);
        if (kernel != null)
        {
            try { Kernel = kernel(table); }
            catch { Model.Dispose(); throw; }
        }
        else
        {
            _parallel = new RowParallel(Threads.Count);
            Kernel = new SimdCompressedMatVec(table, _parallel, slots: PreferredSlots(Model, table));
        }
        // n-bit experts (issue 16) run on the CPU kernels, whatever runs the ternary ones.
        if (Model.Groups.Any(g => g.NBit != null)) NBitKernel = new SimdNBitMatVec(_parallel ??= new RowParallel(Threads.Count));
        if (Model.FourLevelDictionary is { } dict4)
        {
            var table4 = DecodeTable.FromDictionary(dict4);
            Coded = (new SimdCompressedMatVec(table4, _parallel ??= new RowParallel(Threads.Count)), new TernaryRowDecoder(table4));
        }
    }

    /// <summary>The kernel's slots for this model (<see cref="NonzeroTable.PreferredSlots"/>), from up to 2^20 of its
    /// codes, at most 2^16 from each group's first ternary experts, read in place.</summary>
    private static int PreferredSlots(CompressedModel model, DecodeTable table)
    {
        const int PerGroup = 1 << 16, Total = 1 << 20;
        long dense = 0, sampled = 0;
        foreach (var g in model.Groups)
            for (int e = 0, taken = 0; e < g.Experts && taken < PerGroup && sampled < Total; e++)
            {
                if (g.NBit?.IsNBit(e) == true) continue; // bit-packed or coded 2-bit: not the ternary table's codes
                var codes = model.Expert(g, e).Codes;
                int n = (int)Math.Min(codes.Length, Math.Min(PerGroup - taken, Total - sampled));
                dense += NonzeroTable.CountDense(table, codes[..n]);
                sampled += n;
                taken += n;
            }
        return NonzeroTable.PreferredSlots(dense, sampled);
    }

    /// <summary>Expert <paramref name="expert"/>'s matrix <paramref name="kind"/> of the sparse layer <paramref name="prefix"/>.</summary>
    public IWeightMatrix Weight(string prefix, string kind, int expert)
    {
        var group = Model.Group(prefix, kind);
        if (group.NBit?.IsCoded(expert) == true) return new CompressedWeight(Model, group, expert, Coded!.Value.Kernel, Coded.Value.Decoder);
        return group.NBit?.IsNBit(expert) == true
            ? new NBitWeight(Model, group, expert, NBitKernel!)
            : new CompressedWeight(Model, group, expert, Kernel, Decoder);
    }

    public void Dispose()
    {
        (Kernel as IDisposable)?.Dispose();
        _parallel?.Dispose();
        Model.Dispose();
    }
}
