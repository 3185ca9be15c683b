namespace Qmoe.Models.Layers;

/// <summary>The four projections of a multi-head attention layer: q [H·hd, d], k/v [KvH·hd, d], o [d, H·hd].</summary>
public sealed record AttentionWeights(Matrix Q, Matrix K, Matrix V, Matrix O)
{
    /// <summary>Loads <c>{prefix}.q.weight</c> etc. (T5 naming) or any names via <paramref name="names"/>.</summary>
    public static AttentionWeights Load(IO.TensorStore store, string prefix, int dModel, int qWidth, int kvWidth,
        (string q, string k, string v, string o) names) =>
        new(Matrix.View(store, $"{prefix}.{names.q}.weight", qWidth, dModel),
            Matrix.View(store, $"{prefix}.{names.k}.weight", kvWidth, dModel),
            Matrix.View(store, $"{prefix}.{names.v}.weight", kvWidth, dModel),
            Matrix.View(store, $"{prefix}.{names.o}.weight", dModel, qWidth));
}
