namespace Qmoe.Models.Layers;

/// <summary>
/// A weight matrix W [Rows, Cols] as a linear layer uses it, however it is stored: dense (<see cref="Matrix"/>)
/// or dictionary-coded ternary run by the fused kernels (<see cref="Runtime.CompressedWeight"/>).
/// </summary>
public interface IWeightMatrix
{
    int Rows { get; }
    int Cols { get; }
    /// <summary>Y [n, Rows] = X [n, Cols] · Wᵀ.</summary>
    void Multiply(ReadOnlySpan<float> x, int n, Span<float> y);
}
