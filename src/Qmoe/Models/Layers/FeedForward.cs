using System.Numerics.Tensors;

namespace Qmoe.Models.Layers;

/// <summary>Position-wise feed-forward blocks shared by dense layers and experts.</summary>
public static class FeedForward
{
    /// <summary>Hidden activations per token chunk: the hidden buffer [tokens, d_ff] is bounded (and n · d_ff may exceed
    /// 2^31, e.g. an expert with 150k+ calibration tokens at d_ff 14336), while every token's result is unchanged.</summary>
    private const int HiddenChunkElements = 1 << 24;

    /// <summary>Tokens per chunk for hidden rows of <paramref name="width"/>.</summary>
    private static int ChunkTokens(int n, int width) => Math.Max(1, Math.Min(n, HiddenChunkElements / Math.Max(1, width)));

    /// <summary>T5/Switch: y = wo · relu(wi · x); x: [n, wi.Cols], y: [n, wo.Rows].</summary>
    public static void Relu(ReadOnlySpan<float> x, int n, IWeightMatrix wi, IWeightMatrix wo, Span<float> y)
    {
        int chunk = ChunkTokens(n, wi.Rows);
        using var h = new Numerics.ScratchBuffer((long)chunk * wi.Rows);
        for (int t0 = 0; t0 < n; t0 += chunk)
        {
            int m = Math.Min(chunk, n - t0);
            var hc = h.Span[..(m * wi.Rows)];
            wi.Multiply(x.Slice(t0 * wi.Cols, m * wi.Cols), m, hc); // t0 · width ≤ the span's int length
            TensorPrimitives.Max(hc, 0f, hc);
            wo.Multiply(hc, m, y.Slice(t0 * wo.Rows, m * wo.Rows));
        }
    }

    /// <summary>Llama/Mixtral SwiGLU: y = w2 · (silu(w1 · x) ⊙ (w3 · x)); x: [n, w1.Cols], y: [n, w2.Rows].</summary>
    public static void SwiGlu(ReadOnlySpan<float> x, int n, IWeightMatrix w1, IWeightMatrix w3, IWeightMatrix w2, Span<float> y)
    {
        int chunk = ChunkTokens(n, w1.Rows);
        using var g = new Numerics.ScratchBuffer((long)chunk * w1.Rows);
        using var u = new Numerics.ScratchBuffer((long)chunk * w3.Rows);
        for (int t0 = 0; t0 < n; t0 += chunk)
        {
            int m = Math.Min(chunk, n - t0);
            var gc = g.Span[..(m * w1.Rows)];
            var uc = u.Span[..(m * w3.Rows)];
            var xc = x.Slice(t0 * w1.Cols, m * w1.Cols);
            w1.Multiply(xc, m, gc);
            w3.Multiply(xc, m, uc);
            SiluMultiply(gc, uc);
            w2.Multiply(gc, m, y.Slice(t0 * w2.Rows, m * w2.Rows));
        }
    }

    /// <summary>g = silu(g) ⊙ u, silu(z) = z·sigmoid(z) as in PyTorch (the input of w2). Vectorised in chunks of a small
    /// stack buffer: scalar exp calls (here and in attention's softmax) took 3.5% of a qwen3-moe-tiny decode step (perf);
    /// this one alone took a 20-token prefill from 1,008 to 942 µs.</summary>
    public static void SiluMultiply(Span<float> g, ReadOnlySpan<float> u)
    {
        if (u.Length < g.Length) throw new ArgumentException("u shorter than g");
        Span<float> sigmoid = stackalloc float[256];
        for (int i = 0; i < g.Length; i += sigmoid.Length)
        {
            var gc = g.Slice(i, Math.Min(sigmoid.Length, g.Length - i));
            var sc = sigmoid[..gc.Length];
            TensorPrimitives.Sigmoid(gc, sc);
            TensorPrimitives.Multiply(gc, sc, gc);
            TensorPrimitives.Multiply(gc, u.Slice(i, gc.Length), gc);
        }
    }
}
