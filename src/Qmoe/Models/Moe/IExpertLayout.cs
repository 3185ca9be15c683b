using Qmoe.Models.Layers;

namespace Qmoe.Models.Moe;

/// <summary>
/// What the pipeline needs to know about one family's experts: which weight matrices they have, in which
/// order they are quantized (a stage's matrices share one input Hessian; a later stage's input is computed
/// with the already-quantized matrices, as GPTQ's sequential mode does), and how to run them.
/// </summary>
public interface IExpertLayout
{
    /// <summary>Model width: the expert input (stage 0) has this many columns.</summary>
    int Dim { get; }
    /// <summary>Matrix kinds per stage, e.g. Switch [[wi], [wo]], Mixtral [[w1, w3], [w2]].</summary>
    IReadOnlyList<string[]> Stages { get; }
    /// <summary>All kinds in stage order.</summary>
    IEnumerable<string> Kinds => Stages.SelectMany(s => s);
    /// <summary>[rows, cols] of a matrix kind (rows = outputs).</summary>
    (int Rows, int Cols) Shape(string kind);
    /// <summary>The checkpoint name of an expert (for reports), e.g. "{prefix}.experts.expert_3".</summary>
    string ExpertName(string prefix, int expert);
    /// <summary>The checkpoint tensor name of an expert's matrix.</summary>
    string WeightName(string prefix, int expert, string kind);
    /// <summary>Input rows [n, cols of the stage's matrices] of stage ≥ 1, from x [n, Dim] and this expert's quantized earlier matrices.</summary>
    float[] StageInput(int stage, float[] x, int n, Func<string, Matrix> quantized);
    /// <summary>Experts running on the given matrices (expert, kind) → W.</summary>
    IExperts CreateExperts(int count, Func<int, string, IWeightMatrix> weights);
}
