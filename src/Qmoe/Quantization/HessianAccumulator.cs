using Qmoe.Numerics;

namespace Qmoe.Quantization;

/// <summary>
/// Accumulates GPTQ's H = 2/n · Σ x·xᵀ over batches of input rows X [tokens, cols]. Each chunk of up to
/// <see cref="ChunkTokens"/> tokens is one f32 GEMM (lower triangle only); chunk sums are added in double, so the
/// f32 error does not grow with the number of tokens (measured in <c>bench gptq</c>: pure f32 accumulation over
/// 10^5+ tokens loses about 10x more precision than this hybrid).
/// </summary>
public sealed unsafe class HessianAccumulator
{
    /// <summary>Tokens per f32 GEMM before the partial sum is added to the double accumulator.</summary>
    public const int ChunkTokens = 1024;
    private readonly double[] _sum; // lower triangle of Σ x·xᵀ packed by rows: (i, j ≤ i) at i(i+1)/2 + j
    private readonly Memory<float> _chunk; // [cols, cols]: one chunk's f32 product (lower triangle)
    private readonly int _threads;

    /// <summary>
    /// An empty accumulator for inputs of <paramref name="cols"/> features. <paramref name="scratch"/>: [cols, cols]
    /// floats of work space for each chunk's f32 product, e.g. the span <see cref="WriteHessian"/> will fill (its
    /// contents are overwritten); empty allocates one. Memory: 4 bytes per H entry (the packed double triangle)
    /// plus the scratch's 4.
    /// </summary>
    public HessianAccumulator(int cols, int threads = 0, Memory<float> scratch = default)
    {
        if (cols <= 0) throw new ArgumentException($"HessianAccumulator: cols {cols}");
        long size = (long)cols * cols;
        if (!scratch.IsEmpty && scratch.Length != size) throw new ArgumentException($"HessianAccumulator: scratch of {scratch.Length}, needs {cols}x{cols}");
        Columns = cols;
        _sum = new double[(long)cols * (cols + 1) / 2];
        _chunk = scratch.IsEmpty ? new float[size] : scratch;
        _threads = threads;
    }

    /// <summary>Input features (columns of W).</summary>
    public int Columns { get; }

    /// <summary>Tokens added so far (n).</summary>
    public long Tokens { get; private set; }

    /// <summary>Adds the rows of x [tokens, Columns].</summary>
    public void Add(ReadOnlySpan<float> x, int tokens)
    {
        int cols = Columns;
        if (tokens < 0 || (long)tokens * cols > x.Length) throw new ArgumentException($"HessianAccumulator: {x.Length} values for {tokens}x{cols}");
        fixed (float* px = x, pc = _chunk.Span)
        {
            for (int t0 = 0; t0 < tokens; t0 += ChunkTokens)
            {
                int nt = Math.Min(ChunkTokens, tokens - t0);
                float* xs = px + (long)t0 * cols;
                // chunk = Xsᵀ · Xs, lower triangle.
                Gemm.Run(new GemmOperand(xs, cols, true, false), new GemmOperand(xs, cols, false, false), cols, cols, nt, 1f, 0f, pc, cols, _threads, GemmStructure.LowerC);
                for (int i = 0; i < cols; i++)
                {
                    var sum = _sum.AsSpan((int)((long)i * (i + 1) / 2), i + 1);
                    for (int j = 0; j <= i; j++) sum[j] += pc[(long)i * cols + j];
                }
            }
        }
        Tokens += tokens;
    }

    /// <summary>H = 2/n · Σ x·xᵀ as a full symmetric [Columns, Columns] f32 matrix (all zero when no tokens were added).</summary>
    public float[] ToHessian()
    {
        var h = new float[(long)Columns * Columns];
        WriteHessian(h);
        return h;
    }

    /// <summary>Writes H (as <see cref="ToHessian"/>) into <paramref name="h"/> [Columns, Columns] without a temporary copy.</summary>
    public void WriteHessian(Span<float> h)
    {
        int cols = Columns;
        if (h.Length != (long)cols * cols) throw new ArgumentException($"HessianAccumulator: H span of {h.Length}, needs {cols}x{cols}");
        if (Tokens == 0) { h.Clear(); return; }
        double f = 2.0 / Tokens;
        for (int i = 0; i < cols; i++)
        {
            var sum = _sum.AsSpan((int)((long)i * (i + 1) / 2), i + 1);
            for (int j = 0; j <= i; j++) h[i * cols + j] = h[j * cols + i] = (float)(sum[j] * f);
        }
    }
}
