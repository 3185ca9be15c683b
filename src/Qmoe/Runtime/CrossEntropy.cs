namespace Qmoe.Runtime;

/// <summary>Token cross-entropy (natural log) from logits, with the log-sum-exp in f64.</summary>
public static class CrossEntropy
{
    /// <summary>−log softmax(logits)[target] for one row of logits.</summary>
    public static double Token(ReadOnlySpan<float> logits, int target)
    {
        if ((uint)target >= (uint)logits.Length) throw new QmoeException($"label id {target} is outside the vocabulary [0, {logits.Length})");
        float max = float.NegativeInfinity;
        foreach (var l in logits) max = MathF.Max(max, l);
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        return max + Math.Log(sum) - logits[target];
    }
}
