namespace Qmoe.Models.Layers;

/// <summary>Keys and values of one attention layer for one sequence, grown as tokens are decoded: [Length, Width] each.</summary>
public sealed class KvCache
{
    public int Width { get; }
    public int Length { get; private set; }
    public float[] K { get; private set; }
    public float[] V { get; private set; }

    /// <summary>Initial capacity is capped here; the cache grows (doubling) as tokens arrive, so an untrusted
    /// maximum length never allocates up front.</summary>
    public const int MaxInitialCapacity = 1024;

    public KvCache(int width, int capacity = 32)
    {
        capacity = Math.Min(capacity, MaxInitialCapacity);
        Width = width;
        K = new float[width * Math.Max(1, capacity)];
        V = new float[K.Length];
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
        Width = width; Length = length; K = k; V = v;
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

    /// <summary>Appends n rows of keys and values (each [n, Width]).</summary>
    private void Append(ReadOnlySpan<float> k, ReadOnlySpan<float> v, int n)
    {
        int need = (Length + n) * Width;
        if (need > K.Length)
        {
            int cap = Math.Max(need, K.Length * 2);
            var nk = new float[cap]; K.AsSpan(0, Length * Width).CopyTo(nk); K = nk;
            var nv = new float[cap]; V.AsSpan(0, Length * Width).CopyTo(nv); V = nv;
        }
        k[..(n * Width)].CopyTo(K.AsSpan(Length * Width));
        v[..(n * Width)].CopyTo(V.AsSpan(Length * Width));
        Length += n;
    }
}
