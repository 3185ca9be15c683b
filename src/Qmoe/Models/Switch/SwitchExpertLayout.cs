using System.Numerics.Tensors;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Switch;

/// <summary>Switch experts: wi [d_ff, d_model] then wo [d_model, d_ff] on relu(wi x).</summary>
public sealed class SwitchExpertLayout(int dModel, int dFf) : IExpertLayout
{
    private static readonly string[][] StageKinds = [["wi"], ["wo"]];

    public int Dim => dModel;
    public IReadOnlyList<string[]> Stages => StageKinds;
    public (int Rows, int Cols) Shape(string kind) => kind switch
    {
        "wi" => (dFf, dModel),
        "wo" => (dModel, dFf),
        _ => throw new ArgumentException($"unknown Switch expert matrix '{kind}'"),
    };
    public string ExpertName(string prefix, int expert) => $"{prefix}.experts.expert_{expert}";
    public string WeightName(string prefix, int expert, string kind) => $"{prefix}.experts.expert_{expert}.{kind}.weight";

    public float[] StageInput(int stage, float[] x, int n, Func<string, Matrix> quantized)
    {
        if (stage != 1) throw new ArgumentOutOfRangeException(nameof(stage));
        var h = Linear.Forward(x, n, quantized("wi"));
        TensorPrimitives.Max(h, 0f, h);
        return h;
    }

    public IExperts CreateExperts(int count, Func<int, string, IWeightMatrix> weights) =>
        new ReluExperts(Enumerable.Range(0, count).Select(e => weights(e, "wi")).ToArray(),
                        Enumerable.Range(0, count).Select(e => weights(e, "wo")).ToArray());
}
