using Qmoe.Models.Layers;

namespace Qmoe.Models.Switch;

/// <summary>
/// T5's bucketed relative position bias: table [numBuckets, heads] (HF <c>relative_attention_bias.weight</c>),
/// bucket of (key − query): exact for small distances, logarithmic up to maxDistance; bidirectional in the
/// encoder (half the buckets for each sign), causal in the decoder. Computed with f32 log as PyTorch does.
/// </summary>
public sealed class RelativePositionBias : IAttentionBias
{
    private readonly float[] _table; // [numBuckets, heads]
    private readonly int _heads, _numBuckets, _maxDistance;
    private readonly bool _bidirectional;

    public RelativePositionBias(float[] table, int numBuckets, int heads, int maxDistance, bool bidirectional)
    {
        if (table.Length != numBuckets * heads) throw new ArgumentException("bias table shape");
        _table = table; _numBuckets = numBuckets; _heads = heads; _maxDistance = maxDistance; _bidirectional = bidirectional;
    }

    /// <summary>HF <c>_relative_position_bucket</c>.</summary>
    public static int Bucket(int relativePosition, bool bidirectional, int numBuckets, int maxDistance)
    {
        int bucket = 0;
        int n = relativePosition;
        if (bidirectional)
        {
            numBuckets /= 2;
            if (n > 0) bucket += numBuckets;
            n = Math.Abs(n);
        }
        else n = -Math.Min(n, 0);
        int maxExact = numBuckets / 2;
        if (n < maxExact) return bucket + n;
        float logRatio = MathF.Log((float)n / maxExact) / (float)Math.Log((double)maxDistance / maxExact);
        int large = maxExact + (int)(logRatio * (numBuckets - maxExact));
        return bucket + Math.Min(large, numBuckets - 1);
    }

    public void AddTo(int head, int queryPos, Span<float> scores)
    {
        for (int j = 0; j < scores.Length; j++)
            scores[j] += _table[Bucket(j - queryPos, _bidirectional, _numBuckets, _maxDistance) * _heads + head];
    }
}
