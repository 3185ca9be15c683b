namespace Qmoe.Models.Layers;

/// <summary>
/// Keys and values of one attention layer for one sequence, grown as tokens are decoded: K [Length, KWidth],
/// V [Length, VWidth] (equal widths except MLA, whose per-head keys are wider than its values).
/// </summary>
public sealed class KvCache
{
    public int KWidth { get; }
    public int VWidth { get; }
    public int Length { get; private set; }
    public float[] K { get; private set; }
    public float[] V { get; private set; }

    public KvCache(int width, int capacity = 32) : this(width, width, capacity) { }

    public KvCache(int kWidth, int vWidth, int capacity)
    {
        KWidth = kWidth; VWidth = vWidth;
        K = new float[kWidth * Math.Max(1, capacity)];
        V = new float[vWidth * Math.Max(1, capacity)];
    }

    /// <summary>A fixed cache holding precomputed keys and values (cross-attention over encoder states).</summary>
    public KvCache(float[] k, float[] v, int length, int width)
    {
        KWidth = VWidth = width; Length = length; K = k; V = v;
    }

    /// <summary>
    /// Appends n new rows of keys and values and returns the attention view of those n queries (first query row
    /// <paramref name="row"/> of the batch, positions after what the cache held) over everything cached.
    /// </summary>
    public AttentionSequence Extend(int row, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int n)
    {
        int pos0 = Length;
        Append(k, v, n);
        return new AttentionSequence(row, n, pos0, K, V, Length);
    }

    /// <summary>Appends n rows of keys [n, KWidth] and values [n, VWidth].</summary>
    private void Append(ReadOnlySpan<float> k, ReadOnlySpan<float> v, int n)
    {
        K = Grow(K, KWidth, n);
        V = Grow(V, VWidth, n);
        k[..(n * KWidth)].CopyTo(K.AsSpan(Length * KWidth));
        v[..(n * VWidth)].CopyTo(V.AsSpan(Length * VWidth));
        Length += n;
    }

    /// <summary>The buffer with room for n more rows of <paramref name="width"/> (doubling), the cached rows kept.</summary>
    private float[] Grow(float[] buffer, int width, int n)
    {
        int need = (Length + n) * width;
        if (need <= buffer.Length) return buffer;
        var grown = new float[Math.Max(need, buffer.Length * 2)];
        buffer.AsSpan(0, Length * width).CopyTo(grown);
        return grown;
    }
}
