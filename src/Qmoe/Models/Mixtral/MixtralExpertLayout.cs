using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Mixtral;

/// <summary>
/// Mixtral experts: stage 0 = w1 and w3 [ffn, hidden], which read the same input x and so share one Hessian;
/// stage 1 = w2 [hidden, ffn] on silu(w1 x) ⊙ (w3 x), computed with the already-quantized w1 and w3.
/// </summary>
public sealed class MixtralExpertLayout(int hidden, int ffn) : IExpertLayout
{
    private static readonly string[][] StageKinds = [["w1", "w3"], ["w2"]];

    public int Dim => hidden;
    public IReadOnlyList<string[]> Stages => StageKinds;
    public (int Rows, int Cols) Shape(string kind) => kind switch
    {
        "w1" or "w3" => (ffn, hidden),
        "w2" => (hidden, ffn),
        _ => throw new ArgumentException($"unknown Mixtral expert matrix '{kind}'"),
    };
    public string ExpertName(string prefix, int expert) => $"{prefix}.experts.{expert}";
    public string WeightName(string prefix, int expert, string kind) => $"{prefix}.experts.{expert}.{kind}.weight";

    public float[] StageInput(int stage, float[] x, int n, Func<string, Matrix> quantized)
    {
        if (stage != 1) throw new ArgumentOutOfRangeException(nameof(stage));
        var g = Linear.Forward(x, n, quantized("w1"));
        var u = Linear.Forward(x, n, quantized("w3"));
        FeedForward.SiluMultiply(g, u);
        return g;
    }

    public IExperts CreateExperts(int count, Func<int, string, IWeightMatrix> weights) =>
        new SwiGluExperts(Enumerable.Range(0, count).Select(e => weights(e, "w1")).ToArray(),
                          Enumerable.Range(0, count).Select(e => weights(e, "w3")).ToArray(),
                          Enumerable.Range(0, count).Select(e => weights(e, "w2")).ToArray());
}
