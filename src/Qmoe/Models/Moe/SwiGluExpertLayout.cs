using Qmoe.Models.Layers;
using Qmoe.Models.Mixtral;

namespace Qmoe.Models.Moe;

/// <summary>
/// SwiGLU experts (Mixtral, Qwen3-MoE, DeepSeek-V3): stage 0 = gate and up [ffn, hidden], which read the same
/// input x and so share one Hessian; stage 1 = down [hidden, ffn] on silu(gate x) ⊙ (up x), computed with the
/// already-quantized gate and up. Kinds are the checkpoint's matrix names: w1/w3/w2 (Mixtral) or
/// gate_proj/up_proj/down_proj; tensors are <c>{prefix}.experts.{e}.{kind}.weight</c>.
/// </summary>
public sealed class SwiGluExpertLayout(int hidden, int ffn, (string Gate, string Up, string Down) names) : IExpertLayout
{
    public static readonly (string, string, string) MixtralNames = ("w1", "w3", "w2");
    public static readonly (string, string, string) ProjNames = ("gate_proj", "up_proj", "down_proj");

    private readonly string[][] _stages = [[names.Gate, names.Up], [names.Down]];

    public int Dim => hidden;
    public IReadOnlyList<string[]> Stages => _stages;
    public (int Rows, int Cols) Shape(string kind) =>
        kind == names.Gate || kind == names.Up ? (ffn, hidden)
        : kind == names.Down ? (hidden, ffn)
        : throw new ArgumentException($"unknown SwiGLU expert matrix '{kind}'");
    public string ExpertName(string prefix, int expert) => $"{prefix}.experts.{expert}";
    public string WeightName(string prefix, int expert, string kind) => $"{prefix}.experts.{expert}.{kind}.weight";

    public float[] StageInput(int stage, float[] x, int n, Func<string, Matrix> quantized)
    {
        if (stage != 1) throw new ArgumentOutOfRangeException(nameof(stage));
        var g = Linear.Forward(x, n, quantized(names.Gate));
        var u = Linear.Forward(x, n, quantized(names.Up));
        FeedForward.SiluMultiply(g, u);
        return g;
    }

    public IExperts CreateExperts(int count, Func<int, string, IWeightMatrix> weights) =>
        new SwiGluExperts(Enumerable.Range(0, count).Select(e => weights(e, names.Gate)).ToArray(),
                          Enumerable.Range(0, count).Select(e => weights(e, names.Up)).ToArray(),
                          Enumerable.Range(0, count).Select(e => weights(e, names.Down)).ToArray());
}
