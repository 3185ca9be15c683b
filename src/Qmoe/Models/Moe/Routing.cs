namespace Qmoe.Models.Moe;

/// <summary>
/// The router's decision for a batch of T tokens with top-k experts each: Expert[t·k + j], Weight[t·k + j],
/// Kept[t·k + j] (false when the token was dropped by expert capacity; its MLP output is then zero).
/// </summary>
public sealed class Routing
{
    public int Tokens { get; }
    public int K { get; }
    public int[] Expert { get; }
    public float[] Weight { get; }
    public bool[] Kept { get; }
    /// <summary>Router logits [T, experts] (f32).</summary>
    public float[] Logits { get; }

    public Routing(int tokens, int k, float[] logits)
    {
        Tokens = tokens; K = k; Logits = logits;
        Expert = new int[tokens * k]; Weight = new float[tokens * k]; Kept = new bool[tokens * k];
    }

    /// <summary>Token indices (kept only) routed to each expert, in token order: the per-expert list buffer.</summary>
    public List<int>[] TokensPerExpert(int numExperts)
    {
        var lists = new List<int>[numExperts];
        for (int e = 0; e < numExperts; e++) lists[e] = new List<int>();
        for (int i = 0; i < Expert.Length; i++)
            if (Kept[i]) lists[Expert[i]].Add(i / K);
        return lists;
    }

    public int Dropped => Kept.Count(k => !k);
}
