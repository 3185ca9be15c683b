using Qmoe.IO;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>Dense Mixtral experts: y = w2 · (silu(w1 · x) ⊙ (w3 · x)); w1, w3 [ffn, dim], w2 [dim, ffn] per expert.</summary>
public sealed class SwiGluExperts : IExperts
{
    private readonly IWeightMatrix[] _w1, _w3, _w2;

    public SwiGluExperts(IWeightMatrix[] w1, IWeightMatrix[] w3, IWeightMatrix[] w2)
    {
        if (w1.Length == 0 || w1.Length != w2.Length || w1.Length != w3.Length) throw new ArgumentException("w1/w2/w3 count");
        _w1 = w1; _w3 = w3; _w2 = w2;
    }

    /// <summary>
    /// Views of <c>{prefix}.experts.{e}.{gate,up,down}.weight</c> (nothing is read yet): names ("w1", "w3", "w2") for
    /// Mixtral, ("gate_proj", "up_proj", "down_proj") for Qwen3-MoE and DeepSeek-V3.
    /// </summary>
    public static SwiGluExperts Load(TensorStore store, string prefix, int experts, int dim, int ffn,
        (string Gate, string Up, string Down) names)
    {
        var w1 = new IWeightMatrix[experts]; var w3 = new IWeightMatrix[experts]; var w2 = new IWeightMatrix[experts];
        for (int e = 0; e < experts; e++)
        {
            w1[e] = Matrix.View(store, $"{prefix}.experts.{e}.{names.Gate}.weight", ffn, dim);
            w3[e] = Matrix.View(store, $"{prefix}.experts.{e}.{names.Up}.weight", ffn, dim);
            w2[e] = Matrix.View(store, $"{prefix}.experts.{e}.{names.Down}.weight", dim, ffn);
        }
        return new SwiGluExperts(w1, w3, w2);
    }

    public int Count => _w1.Length;
    public int Dim => _w2[0].Rows;
    public IWeightMatrix W1(int e) => _w1[e];
    public IWeightMatrix W3(int e) => _w3[e];
    public IWeightMatrix W2(int e) => _w2[e];

    public void Forward(int expert, ReadOnlySpan<float> x, int n, Span<float> y) =>
        FeedForward.SwiGlu(x, n, _w1[expert], _w3[expert], _w2[expert], y);
}
