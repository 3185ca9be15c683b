using System.Buffers;
using Qmoe.Codec;
using Qmoe.Kernels;
using Qmoe.Models.Layers;

namespace Qmoe.Runtime;

/// <summary>
/// One expert matrix of a compressed model (ternary, or coded 2-bit with the model's four-level kernel and decoder),
/// multiplied from its memory-mapped codes. Generation's few input rows,
/// and every batch-invariant decode step (<see cref="BatchInvariance"/>), run through the fused decode+matvec kernel,
/// 8 vectors at a time, never decoding W. Where many rows meet a small enough matrix (<see cref="Decodes"/>: a
/// prompt's or an evaluation block's tokens routed to the expert) W is decoded once into a pooled scratch buffer and
/// multiplied by the GEMM instead, which is faster than re-decoding it for every 8 rows.
/// </summary>
/// <param name="model">the compressed model</param>
/// <param name="group">the expert's group (sparse layer and matrix kind)</param>
/// <param name="expert">the expert's index in the group</param>
/// <param name="kernel">the fused kernel (shared by the model, reentrant)</param>
/// <param name="decoder">decodes W for the GEMM path</param>
public sealed class CompressedWeight(CompressedModel model, ExpertGroup group, int expert, ICompressedMatVec kernel,
    TernaryRowDecoder decoder) : IWeightMatrix
{
    public int Rows => group.Rows;
    public int Cols => group.Cols;

    /// <summary>
    /// Whether <paramref name="n"/> input rows times a matrix of <paramref name="weights"/> weights take the decode+GEMM
    /// path: from 32 rows for matrices of up to 2^20 weights (the tiny models' experts: there the fused kernel's
    /// per-row costs dominate, and decoding and the GEMM measured 1.2–5× faster from 32 rows on). Larger experts always
    /// run fused: decoded, they spill the caches, and the fused kernel measured faster up to 64 rows on switch-base's
    /// and up to 512 on Mixtral-8x7B's w2 (docs/KERNELS.md); the scratch stays ≤ 4 MB.
    /// </summary>
    public static bool Decodes(int n, long weights) => n >= 32 && weights <= 1 << 20;

    public void Multiply(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        if (Decodes(n, (long)Rows * Cols) && !BatchInvariance.IsOn) MultiplyDecoded(x, n, y);
        else MultiplyFused(x, n, y);
    }

    internal void MultiplyFused(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        var cm = Matrix();
        for (int i = 0; i < n; i += ICompressedMatVec.MaxBatch)
        {
            int b = Math.Min(ICompressedMatVec.MaxBatch, n - i);
            kernel.Multiply(cm, x.Slice(i * Cols, b * Cols), y.Slice(i * Rows, b * Rows), b);
        }
    }

    internal void MultiplyDecoded(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        int size = Rows * Cols;
        var w = ArrayPool<float>.Shared.Rent(size + TernaryRowDecoder.Padding);
        try
        {
            decoder.Decode(Matrix(), 0, Rows, w);
            Numerics.MatMul.XWt(x, w.AsSpan(0, size), y, n, Rows, Cols);
        }
        finally { ArrayPool<float>.Shared.Return(w); }
    }

    /// <summary>The expert's codes, row offsets and scales (or a coded 2-bit expert's grid) as views into the mapped file.</summary>
    private CompressedMatrix Matrix() => model.Expert(group, expert).ToKernel();
}
