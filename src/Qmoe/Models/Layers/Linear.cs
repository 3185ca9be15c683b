namespace Qmoe.Models.Layers;

/// <summary>
/// Y = X · Wᵀ for a linear layer without bias: X [m, k] f32, W [n, k] (f32 or bf16, e.g. memory-mapped),
/// Y [m, n] f32. Runs on <see cref="Numerics.MatMul.XWt(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, int, int, int, int)"/>
/// (measured faster than a per-row TensorPrimitives.Dot loop on switch-small-32 eval); results do not depend on the thread count.
/// </summary>
public static class Linear
{
    public static void Forward(ReadOnlySpan<float> x, int m, Matrix w, Span<float> y)
    {
        if (w.IsBf16) Numerics.MatMul.XWt(x, w.Bf16, y, m, w.Rows, w.Cols);
        else Numerics.MatMul.XWt(x, w.F32, y, m, w.Rows, w.Cols);
    }

    /// <summary>Allocating convenience: returns Y [m, W.Rows].</summary>
    public static float[] Forward(ReadOnlySpan<float> x, int m, Matrix w)
    {
        var y = new float[checked((long)m * w.Rows)]; // beyond 2^31 elements: a clean error, not a wrapped size
        Forward(x, m, w, y);
        return y;
    }
}
