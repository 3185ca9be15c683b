using System.Numerics.Tensors;

namespace Qmoe.Models.Layers;

/// <summary>Position-wise feed-forward blocks shared by dense layers and experts.</summary>
public static class FeedForward
{
    /// <summary>T5/Switch: y = wo · relu(wi · x); x, y: [n, wo.Rows].</summary>
    public static void Relu(ReadOnlySpan<float> x, int n, IWeightMatrix wi, IWeightMatrix wo, Span<float> y)
    {
        var h = new float[n * wi.Rows];
        wi.Multiply(x, n, h);
        TensorPrimitives.Max(h, 0f, h);
        wo.Multiply(h, n, y);
    }
}
