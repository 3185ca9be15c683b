using System.Numerics.Tensors;

namespace Qmoe.Models.Layers;

/// <summary>Position-wise feed-forward blocks shared by dense layers and experts.</summary>
public static class FeedForward
{
    /// <summary>T5/Switch: y = wo · relu(wi · x); x, y: [n, wo.Rows].</summary>
    public static void Relu(ReadOnlySpan<float> x, int n, Matrix wi, Matrix wo, Span<float> y)
    {
        var h = Linear.Forward(x, n, wi);
        TensorPrimitives.Max(h, 0f, h);
        Linear.Forward(h, n, wo, y);
    }
}
