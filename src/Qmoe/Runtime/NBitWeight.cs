using System.Buffers;
using Qmoe.Codec;
using Qmoe.Kernels;
using Qmoe.Models.Layers;

namespace Qmoe.Runtime;

/// <summary>
/// One bit-packed n-bit expert matrix of a compressed model (issue 16), multiplied from its memory-mapped codes: up to
/// <see cref="GemmThreshold"/> input rows through the fused unpack+matvec kernel, 8 at a time; larger
/// batches unpack W once into a pooled scratch buffer (the quantizer's exact values) and run the GEMM.
/// </summary>
public sealed class NBitWeight(CompressedModel model, ExpertGroup group, int expert, INBitMatVec kernel) : IWeightMatrix
{
    /// <summary>Input rows from which W is unpacked for the GEMM. At 32 rows unpacking (a row at a time) and the GEMM took
    /// 1.05–2× the fused kernel's time on 2-bit 96×192 to 14336×4096 matrices, at 64 about the same, at 128 0.5–0.7×
    /// (one thread, AMD EPYC Zen 5; docs/KERNELS.md).</summary>
    public const int GemmThreshold = 64;

    public int Rows => group.Rows;
    public int Cols => group.Cols;

    public void Multiply(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (n >= GemmThreshold)
        {
            var w = ArrayPool<float>.Shared.Rent(Rows * Cols);
            try
            {
                Decode(w);
                Numerics.MatMul.XWt(x, w.AsSpan(0, Rows * Cols), y, n, Rows, Cols);
            }
            finally { ArrayPool<float>.Shared.Return(w); }
            return;
        }
        var m = group.NBit!.Matrix(model.Store, expert);
        for (int i = 0; i < n; i += ICompressedMatVec.MaxBatch)
        {
            int b = Math.Min(ICompressedMatVec.MaxBatch, n - i);
            kernel.Multiply(m, x.Slice(i * Cols, b * Cols), y.Slice(i * Rows, b * Rows), b);
        }
    }

    /// <summary>Dense f32 W [Rows, Cols] into <paramref name="w"/>: scale · (code − zero) per weight.</summary>
    public void Decode(float[] w)
    {
        var m = group.NBit!.Matrix(model.Store, expert);
        int rowBytes = (int)m.RowBytes;
        for (int r = 0; r < Rows; r++)
            PackedNBitMatrix.DequantizeRow(m.Packed.Slice(r * rowBytes, rowBytes), m.Bits, m.Scales[r], m.Zeros[r], w.AsSpan(r * Cols, Cols));
    }
}
