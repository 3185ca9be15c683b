namespace Qmoe.Models.Layers;

/// <summary>
/// Rotary position embeddings as Hugging Face computes them in f32: angle = pos·inv_freq[i], cos/sin scaled by the
/// rope type's attention factor (1 for plain RoPE; YaRN's mscale ratio, see <see cref="YarnRope"/>).
/// Rotate-half convention (GPT-NeoX / Llama / Mixtral / Qwen3): x' = x·cos + rotate_half(x)·sin with
/// rotate_half([a, b]) = [−b, a] over the halves of each head. Interleaved (DeepSeek's <c>rope_interleave</c>):
/// pairs (x₂ᵢ, x₂ᵢ₊₁) rotate by angle i. HF permutes each head to [x₀, x₂, .., x₁, x₃, ..] and then rotates
/// halves; we rotate the pairs in place instead, which differs only by the same permutation of q and k and so
/// leaves every q·k (the only use of rotated vectors) unchanged.
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly float[] _invFreq; // [headDim / 2]
    private readonly float _attentionScaling;

    public int HeadDim { get; }
    public bool Interleaved { get; }

    /// <summary>Plain RoPE: inv_freq[i] = 1 / θ^(2i/headDim).</summary>
    public RotaryEmbedding(int headDim, double theta, bool interleaved = false)
        : this(DefaultInvFreq(headDim, theta), 1f, interleaved) { }

    /// <summary>Any rope type, given its inverse frequencies [headDim/2] and the factor applied to cos and sin.</summary>
    public RotaryEmbedding(float[] invFreq, float attentionScaling, bool interleaved)
    {
        if (invFreq.Length == 0) throw new ArgumentException("rotary embeddings need at least one frequency");
        _invFreq = invFreq; _attentionScaling = attentionScaling;
        HeadDim = invFreq.Length * 2; Interleaved = interleaved;
    }

    /// <summary>HF's default inv_freq in f32: 1 / θ^(2i/d) for i &lt; d/2.</summary>
    public static float[] DefaultInvFreq(int headDim, double theta)
    {
        if (headDim <= 0 || headDim % 2 != 0) throw new ArgumentException($"rotary head_dim {headDim} must be even and positive");
        var inv = new float[headDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1f / MathF.Pow((float)theta, (float)(2 * i) / headDim);
        return inv;
    }

    public ReadOnlySpan<float> InvFreq => _invFreq;
    public float AttentionScaling => _attentionScaling;

    /// <summary>Rotates x [n, heads·HeadDim] in place; row t is at absolute position pos0 + t.</summary>
    public void Apply(Span<float> x, int n, int heads, int pos0) => Apply(x, n, heads, HeadDim, 0, pos0);

    /// <summary>
    /// Rotates the rotary part of each head in place: x [n, heads·stride], head h's rotary dims at
    /// h·stride + offset .. + HeadDim (MLA: the rope part after the nope part of each query head).
    /// </summary>
    public void Apply(Span<float> x, int n, int heads, int stride, int offset, int pos0)
    {
        int half = HeadDim / 2, width = heads * stride;
        Span<float> cos = stackalloc float[half], sin = stackalloc float[half];
        for (int t = 0; t < n; t++)
        {
            float pos = pos0 + t;
            for (int i = 0; i < half; i++)
            {
                float angle = pos * _invFreq[i];
                cos[i] = MathF.Cos(angle) * _attentionScaling;
                sin[i] = MathF.Sin(angle) * _attentionScaling;
            }
            var row = x.Slice(t * width, width);
            for (int h = 0; h < heads; h++)
            {
                var v = row.Slice(h * stride + offset, HeadDim);
                // (a, b) = the pair rotated by angle i: halves (i, i + half), or neighbours (2i, 2i + 1) when interleaved.
                int ia = 0, ib = half, step = 1;
                if (Interleaved) { ib = 1; step = 2; }
                for (int i = 0; i < half; i++, ia += step, ib += step)
                {
                    float a = v[ia], b = v[ib];
                    v[ia] = a * cos[i] - b * sin[i];
                    v[ib] = b * cos[i] + a * sin[i];
                }
            }
        }
    }
}
