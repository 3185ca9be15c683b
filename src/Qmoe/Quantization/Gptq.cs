using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using Qmoe.Numerics;

namespace Qmoe.Quantization;

/// <summary>
/// GPTQ (Frantar et al. 2022) as in the authors' gptq.py: grid fitted to the original rows; dead columns
/// (H_ii = 0) get H_ii = 1 and W[:, i] = 0; H += damp·mean(diag H)·I; Hinv = upper Cholesky factor of H⁻¹;
/// columns in blocks: quantize column i, err = (w − q) / Hinv_ii, update the rest of the block with
/// err·Hinv[i, i:], the columns after the block lazily with one GEMM per block. Rows are independent, so the
/// in-block work is split over row ranges and the result does not depend on the thread count.
/// Robustness (QMoE): no calibration tokens (n = 0 or diag H all zero), or a Cholesky that still fails after
/// <see cref="GptqOptions.MaxDampRetries"/> increases of damping, gives RTN with <see cref="QuantizedWeight.Fallback"/> set.
/// </summary>
public static unsafe class Gptq
{
    /// <summary>
    /// Quantizes w [rows, cols] with Hessian h [cols, cols] (e.g. <see cref="HessianAccumulator.ToHessian"/>);
    /// <paramref name="tokens"/> = calibration tokens behind h (0 forces the RTN fallback; -1 = unknown).
    /// w and h are only read; the call allocates at most <see cref="WorkingBytes"/> more.
    /// </summary>
    public static QuantizedWeight Quantize(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> h, GptqOptions options, long tokens = -1)
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols > w.Length) throw new ArgumentException($"Gptq: W has {w.Length} values, needs {rows}x{cols}");
        if ((long)cols * cols > h.Length) throw new ArgumentException($"Gptq: H has {h.Length} values, needs {cols}x{cols}");
        if (options.BlockSize <= 0) throw new ArgumentException($"Gptq: block size {options.BlockSize}");
        return Run(w[..(rows * cols)], rows, cols, h[..(cols * cols)], tokens, options, options.Threads);
    }

    /// <summary>
    /// Bytes <see cref="Quantize"/> allocates at most besides its inputs, all counted as live at once (an upper bound
    /// on its peak): the damped H factored in place into Hinv (4 per H entry); W's working copy, Q (4 + 4 per weight)
    /// and the codes (1); the block buffers (13 per weight of a block); the triangular inverse's scratch only when Q,
    /// which lends it, is smaller (rows &lt; about cols/4); and the small rest (Cholesky panel and block, the diagonal,
    /// permutation, row grid, GEMM packing).
    /// </summary>
    public static long WorkingBytes(int rows, int cols, int blockSize)
    {
        long weights = (long)rows * cols, scratch = TriangularInverse.ScratchFloats(cols);
        long small = 4L * cols * 128 + 4 * 128 * 128 + 4 * 4096 + 32L * cols + 16L * rows + 4L * 256 * 4096 + 4096;
        return 4L * cols * cols + 9 * weights + 13L * Math.Min(blockSize, cols) * rows + (scratch > weights ? 4 * scratch : 0) + small;
    }

    // w and h are the caller's and only read. Storage: one [cols, cols] array is the damped (permuted) H and is
    // factored in place into Hinv; W is copied once (dead columns zeroed, permuted), Q lends its space to the
    // factorisation before the column loop writes it. The arithmetic is that of the authors' gptq.py order.
    internal static QuantizedWeight Run(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> h, long tokens, GptqOptions o, int threads)
    {
        var grid = RowGrid.Fit(o.Type, w, rows, cols, o.TernaryStretch);
        // H's diagonal with the dead-column fix (H_ii = 0 -> 1); H itself is never written.
        var diag = new float[cols];
        bool anyInput = false;
        for (int i = 0; i < cols; i++)
        {
            float d = h[i * cols + i];
            anyInput |= d != 0f;
            diag[i] = d == 0f ? 1f : d;
        }
        if (tokens == 0 || !anyInput) return Rtn.Quantize(grid, w, cols, "no calibration tokens"); // w: the original weights

        // Column order: order[k] = the column processed k-th (act order: decreasing diag H, stable); perm: null without act order.
        int[]? perm = o.ActOrder ? Enumerable.Range(0, cols).OrderByDescending(i => diag[i]).ToArray() : null;
        var order = perm ?? Enumerable.Range(0, cols).ToArray();
        double meanDiag = 0;
        for (int k = 0; k < cols; k++) meanDiag += diag[order[k]];
        meanDiag /= cols;

        var hinv = new float[cols * cols];
        var Q = new float[rows * cols];
        var scratch = TriangularInverse.ScratchFloats(cols) <= Q.Length ? Q : Span<float>.Empty;
        double damp = o.EffectiveDamp;
        for (int attempt = 0; ; attempt++, damp *= 10)
        {
            FillDamped(h, diag, order, perm != null, cols, (float)(damp * meanDiag), hinv);
            if (Cholesky.TryInverseUpperFactorInPlace(hinv, cols, threads, scratch)) break;
            if (attempt == o.MaxDampRetries)
            {
                return Rtn.Quantize(grid, w, cols, $"Cholesky failed with damping up to {damp:G3}");
            }
        }

        var W = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++)
            {
                int c = order[k];
                W[r * cols + k] = h[c * cols + c] == 0f ? 0f : w[r * cols + c]; // dead columns zeroed
            }
        var codes = new byte[rows * cols];
        Blocks(W, Q, codes, hinv, grid, rows, cols, o.BlockSize, threads);

        if (perm != null)
        {
            UnpermuteColumns(Q, rows, cols, perm);
            UnpermuteColumns(codes, rows, cols, perm);
        }
        return new QuantizedWeight(grid, cols, codes, Q, QuantMethod.Gptq, null, damp);
    }

    // d [cols, cols] = H with the dead-column fix, in processing order (d[k, l] = H[order[k], order[l]]), plus add
    // on the diagonal: what gptq.py's H has after its in-place edits, without editing H.
    private static void FillDamped(ReadOnlySpan<float> h, float[] diag, int[] order, bool permuted, int cols, float add, float[] d)
    {
        for (int k = 0; k < cols; k++)
        {
            int i = order[k];
            var dst = d.AsSpan(k * cols, cols);
            var src = h.Slice(i * cols, cols);
            if (!permuted) src.CopyTo(dst);
            else
                for (int l = 0; l < cols; l++) dst[l] = src[order[l]];
            dst[k] = diag[i] + add;
        }
    }

    private static void Blocks(float[] W, float[] Q, byte[] codes, float[] hinv, RowGrid grid, int rows, int cols, int blockSize, int threads)
    {
        int bs = Math.Min(blockSize, cols);
        var Wb = new float[bs * rows];
        var Eb = new float[bs * rows];
        var Qb = new float[bs * rows];
        var Cb = new byte[bs * rows];
        // One contiguous row range per thread (rows are independent); ranges of at least 64 rows.
        int units = Math.Clamp(rows / 64, 1, Threads.Resolve(threads));
        for (int i1 = 0; i1 < cols; i1 += bs)
        {
            int count = Math.Min(bs, cols - i1), i2 = i1 + count;
            Threads.For(units, threads, u =>
                QuantizeBlockRows(W, Q, codes, hinv, grid, Wb, Eb, Qb, Cb, rows, cols, i1, count, rows * u / units, rows * (u + 1) / units));
            if (i2 < cols)
                fixed (float* pe = Eb, ph = hinv, pw = W)
                    // W[:, i2:] -= Ebᵀ · Hinv[i1:i2, i2:]
                    Gemm.Run(new GemmOperand(pe, rows, true, false), new GemmOperand(ph + (long)i1 * cols + i2, cols, false, false),
                        rows, cols - i2, count, -1f, 1f, pw + i2, cols, threads);
        }
    }

    // Rows r0..r1 of one block: quantize column by column, propagating each column's error within the block.
    // Wb, Eb, Qb, Cb: [count, rows], the block transposed so that a column is contiguous.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)] // runs a handful of times per call: skip the tier-0 JIT
    private static void QuantizeBlockRows(float[] W, float[] Q, byte[] codes, float[] hinv, RowGrid grid,
        float[] Wb, float[] Eb, float[] Qb, byte[] Cb, int rows, int cols, int i1, int count, int r0, int r1)
    {
        int nr = r1 - r0;
        for (int r = r0; r < r1; r++)
            for (int c = 0; c < count; c++) Wb[c * rows + r] = W[r * cols + i1 + c];
        for (int i = 0; i < count; i++)
        {
            int col = i1 + i;
            var w = Wb.AsSpan(i * rows + r0, nr);
            var q = Qb.AsSpan(i * rows + r0, nr);
            var err = Eb.AsSpan(i * rows + r0, nr);
            grid.QuantizeRows(r0, w, q, Cb.AsSpan(i * rows + r0, nr));
            TensorPrimitives.Subtract(w, q, err);
            TensorPrimitives.Divide(err, hinv[col * cols + col], err);
            for (int j = i + 1; j < count; j++)
            {
                var wj = Wb.AsSpan(j * rows + r0, nr);
                TensorPrimitives.MultiplyAdd(err, -hinv[col * cols + i1 + j], wj, wj);
            }
        }
        for (int r = r0; r < r1; r++)
            for (int c = 0; c < count; c++)
            {
                Q[r * cols + i1 + c] = Qb[c * rows + r];
                codes[r * cols + i1 + c] = Cb[c * rows + r];
            }
    }

    // Row by row, a[r, perm[k]] = a[r, k]: back from processing order to the original column order.
    private static void UnpermuteColumns<T>(T[] a, int rows, int cols, int[] perm)
    {
        var row = new T[cols];
        for (int r = 0; r < rows; r++)
        {
            a.AsSpan(r * cols, cols).CopyTo(row);
            for (int k = 0; k < cols; k++) a[r * cols + perm[k]] = row[k];
        }
    }
}
