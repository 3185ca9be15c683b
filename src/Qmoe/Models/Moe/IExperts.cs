namespace Qmoe.Models.Moe;

/// <summary>
/// The experts of one sparse layer, however they are stored (dense checkpoint views, dequantized copies,
/// or compressed codes run by the fused kernels).
/// </summary>
public interface IExperts
{
    int Count { get; }
    /// <summary>Model width: rows of x and y.</summary>
    int Dim { get; }
    /// <summary>y = expert_e(x) for x, y: [n, Dim] row-major; y is overwritten.</summary>
    void Forward(int expert, ReadOnlySpan<float> x, int n, Span<float> y);
}
