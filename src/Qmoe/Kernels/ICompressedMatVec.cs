namespace Qmoe.Kernels;

/// <summary>
/// Fused decode + multiply on a dict16-coded ternary matrix: Y = W X for a batch of up to
/// <see cref="MaxBatch"/> input vectors, never materialising dense W. Instances hold a reusable workspace:
/// one call at a time per instance.
/// </summary>
public interface ICompressedMatVec
{
    /// <summary>Largest batch one call takes.</summary>
    public const int MaxBatch = 8;

    /// <summary>
    /// x: [batch, w.Cols] row-major (one input vector per row), y: [batch, w.Rows]; y[b, r] = Σ_j W[r, j] x[b, j].
    /// Throws <see cref="QmoeException"/> on malformed matrices (bad offsets, a row not decoding to Cols weights).
    /// </summary>
    void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1);
}
