namespace Qmoe.Models.Layers;

/// <summary>An additive bias on attention scores that depends on head and positions (T5's relative position bias).</summary>
public interface IAttentionBias
{
    /// <summary>scores[j] += bias(head, queryPos, key j) for keys j = 0..scores.Length-1.</summary>
    void AddTo(int head, int queryPos, Span<float> scores);
}
