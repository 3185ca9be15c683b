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

    /// <summary>Llama/Mixtral SwiGLU: y = w2 · (silu(w1 · x) ⊙ (w3 · x)); x, y: [n, w2.Rows].</summary>
    public static void SwiGlu(ReadOnlySpan<float> x, int n, Matrix w1, Matrix w3, Matrix w2, Span<float> y)
    {
        var g = Linear.Forward(x, n, w1);
        var u = Linear.Forward(x, n, w3);
        SiluMultiply(g, u);
        Linear.Forward(g, n, w2, y);
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
