using System.Numerics.Tensors;

namespace Qmoe.Models.Layers;

/// <summary>
/// Y = X · Wᵀ for a linear layer without bias: X [m, k] f32, W [n, k] (f32 or bf16), Y [n... m, n] f32.
/// Parallel over blocks of W's rows; each W row is widened once and dotted with a tile of X rows that stays
/// in cache, so W streams from memory once per tile (what matters when W is large and m small).
/// Each Y element is one TensorPrimitives.Dot, so results do not depend on the thread count.
/// </summary>
public static class Linear
{
    private const int TokenTile = 64, RowBlock = 16;

    public static void Forward(ReadOnlySpan<float> x, int m, Matrix w, Span<float> y)
    {
        int n = w.Rows, k = w.Cols;
        if (x.Length < (long)m * k || y.Length < (long)m * n) throw new ArgumentException("Linear: buffer too short");
        if (m == 0) return;
        unsafe
        {
            fixed (float* px = x, py = y)
            {
                float* xp = px, yp = py;
                int blocks = (n + RowBlock - 1) / RowBlock;
                Threads.For(blocks, b =>
                {
                    Span<float> row = k <= 4096 ? stackalloc float[k] : new float[k];
                    var xs = new ReadOnlySpan<float>(xp, m * k);
                    var ys = new Span<float>(yp, m * n);
                    int r0 = b * RowBlock, r1 = Math.Min(n, r0 + RowBlock);
                    for (int t0 = 0; t0 < m; t0 += TokenTile)
                    {
                        int t1 = Math.Min(m, t0 + TokenTile);
                        for (int r = r0; r < r1; r++)
                        {
                            var wr = w.Row(r, row);
                            for (int t = t0; t < t1; t++)
                                ys[t * n + r] = TensorPrimitives.Dot(xs.Slice(t * k, k), wr);
                        }
                    }
                });
            }
        }
    }

    /// <summary>Allocating convenience: returns Y [m, W.Rows].</summary>
    public static float[] Forward(ReadOnlySpan<float> x, int m, Matrix w)
    {
        var y = new float[m * w.Rows];
        Forward(x, m, w, y);
        return y;
    }
}
