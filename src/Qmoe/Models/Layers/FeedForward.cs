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

    /// <summary>Llama/Mixtral SwiGLU: y = w2 · (silu(w1 · x) ⊙ (w3 · x)); x, y: [n, w2.Rows].</summary>
    public static void SwiGlu(ReadOnlySpan<float> x, int n, IWeightMatrix w1, IWeightMatrix w3, IWeightMatrix w2, Span<float> y)
    {
        var g = new float[n * w1.Rows];
        var u = new float[n * w3.Rows];
        w1.Multiply(x, n, g);
        w3.Multiply(x, n, u);
        SiluMultiply(g, u);
        w2.Multiply(g, n, y);
    }

    /// <summary>g = silu(g) ⊙ u, silu(z) = z·sigmoid(z) (the input of w2).</summary>
    public static void SiluMultiply(Span<float> g, ReadOnlySpan<float> u)
    {
        for (int i = 0; i < g.Length; i++)
        {
            float z = g[i];
            g[i] = z / (1f + MathF.Exp(-z)) * u[i];
        }
    }
}
