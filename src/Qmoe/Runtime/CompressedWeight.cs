using System.Buffers;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Kernels;
using Qmoe.Models.Layers;

namespace Qmoe.Runtime;

/// <summary>
/// One expert matrix of a compressed model, multiplied from its memory-mapped codes. Up to
/// <see cref="GemmThreshold"/> input rows (generation: one token per step) run through the fused
/// decode+matvec kernel, 8 vectors at a time, never decoding W. For larger batches (evaluation, prompt
/// processing) decoding the matrix once into a pooled scratch buffer and running the GEMM is faster than
/// re-decoding every row for every group of 8 inputs; the scratch holds one expert matrix and is returned
/// right after. The kernel instance is shared by the whole model and called by one thread at a time.
/// </summary>
public sealed class CompressedWeight(CompressedModel model, ExpertGroup group, int expert, ICompressedMatVec kernel) : IWeightMatrix
{
    /// <summary>Input rows from which the decode-then-GEMM path is used.</summary>
    public const int GemmThreshold = 32;

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
        var m = model.Expert(group, expert);
        var cm = new CompressedMatrix(m.Codes, m.RowOffsets, m.Scales, m.Rows, m.Cols);
        for (int i = 0; i < n; i += ICompressedMatVec.MaxBatch)
        {
            int b = Math.Min(ICompressedMatVec.MaxBatch, n - i);
            kernel.Multiply(cm, x.Slice(i * Cols, b * Cols), y.Slice(i * Rows, b * Rows), b);
        }
    }

    /// <summary>Dense f32 W [Rows, Cols] into <paramref name="w"/> (trit 0 → 0, 1 → row min, 2 → row max).</summary>
    public void Decode(float[] w)
    {
        int rows = Rows, cols = Cols;
        Threads.For((rows + 63) / 64, block =>
        {
            var m = model.Expert(group, expert);
            Span<byte> trits = cols <= StackLimits.MaxBytes ? stackalloc byte[cols] : new byte[cols];
            for (int r = block * 64; r < Math.Min(rows, block * 64 + 64); r++)
            {
                TernaryDecoder.DecodeRow(m.Codes[m.RowOffsets[r]..m.RowOffsets[r + 1]], model.Dictionary, trits);
                float lo = BFloat16.ToFloat(m.Scales[2 * r]), hi = BFloat16.ToFloat(m.Scales[2 * r + 1]);
                var dst = w.AsSpan(r * cols, cols);
                for (int c = 0; c < cols; c++) dst[c] = trits[c] switch { 1 => lo, 2 => hi, _ => 0f };
            }
        });
    }
}
