using Qmoe.IO;

namespace Qmoe.Models.Layers;

/// <summary>
/// A dense SwiGLU MLP <c>{prefix}.{gate_proj,up_proj,down_proj}.weight</c>: y = down · (silu(gate · x) ⊙ (up · x));
/// gate, up [ffn, dim], down [dim, ffn]. Dense layers of Qwen3-MoE and DeepSeek-V3, and DeepSeek's shared experts.
/// </summary>
public sealed class GatedMlp(Matrix gate, Matrix up, Matrix down)
{
    public Matrix Gate { get; } = gate;
    public Matrix Up { get; } = up;
    public Matrix Down { get; } = down;

    public static GatedMlp Load(TensorStore store, string prefix, int dim, int ffn) =>
        new(Matrix.View(store, $"{prefix}.gate_proj.weight", ffn, dim),
            Matrix.View(store, $"{prefix}.up_proj.weight", ffn, dim),
            Matrix.View(store, $"{prefix}.down_proj.weight", dim, ffn));

    /// <summary>x, y: [n, dim]; y is overwritten.</summary>
    public void Forward(ReadOnlySpan<float> x, int n, Span<float> y) => FeedForward.SwiGlu(x, n, Gate, Up, Down, y);
}
