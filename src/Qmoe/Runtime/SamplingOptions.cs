namespace Qmoe.Runtime;

/// <summary>How the next token is picked: greedy (argmax, first on ties) at temperature 0, otherwise sampled from
/// softmax(logits / temperature) restricted to the smallest top-p nucleus, with a seeded generator when
/// <see cref="Seed"/> is set (reproducible).</summary>
public sealed record SamplingOptions(float Temperature = 0f, float TopP = 1f, long? Seed = null)
{
    public static SamplingOptions Greedy { get; } = new();

    public void Validate()
    {
        if (!(Temperature >= 0 && Temperature <= 100)) throw new QmoeException($"temperature {Temperature} must be in [0, 100]");
        if (!(TopP > 0 && TopP <= 1)) throw new QmoeException($"top_p {TopP} must be in (0, 1]");
    }
}
