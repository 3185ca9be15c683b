namespace Qmoe.Models.Layers;

/// <summary>Keys and values of one attention layer for one sequence, grown as tokens are decoded: [Length, Width] each.</summary>
public sealed class KvCache
{
    public int Width { get; }
    public int Length { get; private set; }
    public float[] K { get; private set; }
    public float[] V { get; private set; }

    public KvCache(int width, int capacity = 32)
    {
        Width = width;
        K = new float[width * Math.Max(1, capacity)];
        V = new float[K.Length];
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
