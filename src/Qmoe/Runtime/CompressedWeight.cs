using Qmoe.Codec;
using Qmoe.Kernels;
using Qmoe.Models.Layers;

namespace Qmoe.Runtime;

/// <summary>
/// One expert matrix of a compressed model, multiplied straight from its memory-mapped codes by the fused
/// decode+matvec kernel (never decoded to dense weights). Inputs are taken 8 vectors at a time (the kernel's
/// batch). The kernel instance is shared by the whole model and called by one thread at a time.
/// </summary>
public sealed class CompressedWeight(CompressedModel model, ExpertGroup group, int expert, ICompressedMatVec kernel) : IWeightMatrix
{
    public int Rows => group.Rows;
    public int Cols => group.Cols;

    public void Multiply(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        var m = model.Expert(group, expert);
        var w = new CompressedMatrix(m.Codes, m.RowOffsets, m.Scales, m.Rows, m.Cols);
        for (int i = 0; i < n; i += ICompressedMatVec.MaxBatch)
        {
            int b = Math.Min(ICompressedMatVec.MaxBatch, n - i);
            kernel.Multiply(w, x.Slice(i * Cols, b * Cols), y.Slice(i * Rows, b * Rows), b);
        }
    }
}
