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

    /// <summary>Initial capacity is capped here; the cache grows (doubling) as tokens arrive, so an untrusted
    /// maximum length never allocates up front.</summary>
    public const int MaxInitialCapacity = 1024;

    public KvCache(int width, int capacity = 32) : this(width, width, capacity) { }

    public KvCache(int kWidth, int vWidth, int capacity)
    {
        capacity = Math.Min(capacity, MaxInitialCapacity);
        KWidth = kWidth; VWidth = vWidth;
        K = new float[kWidth * Math.Max(1, capacity)];
        V = new float[vWidth * Math.Max(1, capacity)];
    }

    /// <summary>
    /// Refuses a generation whose caches ([layers] × keys and values × [length, width] f32) would not fit in the
    /// memory the runtime reports available; checked before decoding starts.
    /// </summary>
    public static void CheckBudget(int layers, int width, int length)
    {
        long bytes = (long)layers * 2 * width * length * sizeof(float);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (bytes > available / 2)
            throw new QmoeException($"KV caches for {length} tokens need {bytes >> 20} MiB, more than half the {available >> 20} MiB available; ask for fewer tokens");
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
