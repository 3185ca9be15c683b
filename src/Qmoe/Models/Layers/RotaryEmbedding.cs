namespace Qmoe.Models.Layers;

/// <summary>
/// Rotary position embeddings in the rotate-half convention (GPT-NeoX / Llama / Mixtral in Hugging Face):
/// x' = x·cos + rotate_half(x)·sin with rotate_half([a, b]) = [−b, a] over the halves of each head.
/// Frequencies as HF computes them in f32: inv_freq[i] = 1 / θ^(2i/headDim), angle = pos·inv_freq[i].
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _invFreq; // [headDim / 2]

    public int HeadDim { get; }

    public RotaryEmbedding(int headDim, double theta)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"rotary head_dim {headDim} must be even and positive");
        HeadDim = headDim;
        _invFreq = new float[headDim / 2];
        for (int i = 0; i < _invFreq.Length; i++)
            _invFreq[i] = 1f / MathF.Pow((float)theta, (float)(2 * i) / headDim);
    }

    /// <summary>
    /// Rotates x [n, heads·HeadDim] in place; row t is at absolute position pos0 + t.
    /// </summary>
    public void Apply(Span<float> x, int n, int heads, int pos0)
    {
        int half = HeadDim / 2, width = heads * HeadDim;
        bool small = half * sizeof(float) <= StackLimits.MaxBytes / 2;
        Span<float> cos = small ? stackalloc float[half] : new float[half];
        Span<float> sin = small ? stackalloc float[half] : new float[half];
        for (int t = 0; t < n; t++)
        {
            float pos = pos0 + t;
            for (int i = 0; i < half; i++)
            {
                float angle = pos * _invFreq[i];
                cos[i] = MathF.Cos(angle);
                sin[i] = MathF.Sin(angle);
            }
            var row = x.Slice(t * width, width);
            for (int h = 0; h < heads; h++)
            {
                var v = row.Slice(h * HeadDim, HeadDim);
                for (int i = 0; i < half; i++)
                {
                    float a = v[i], b = v[i + half];
                    v[i] = a * cos[i] - b * sin[i];
                    v[i + half] = b * cos[i] + a * sin[i];
                }
            }
        }
    }
}
