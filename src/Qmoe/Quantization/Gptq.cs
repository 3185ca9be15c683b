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
    /// </summary>
    public static QuantizedWeight Quantize(ReadOnlySpan<float> w, int rows, int cols, ReadOnlySpan<float> h, GptqOptions options, long tokens = -1)
    {
        if (rows <= 0 || cols <= 0 || (long)rows * cols > w.Length) throw new ArgumentException($"Gptq: W has {w.Length} values, needs {rows}x{cols}");
        if ((long)cols * cols > h.Length) throw new ArgumentException($"Gptq: H has {h.Length} values, needs {cols}x{cols}");
        if (options.BlockSize <= 0) throw new ArgumentException($"Gptq: block size {options.BlockSize}");
        return Run(w[..(rows * cols)].ToArray(), rows, cols, h[..(cols * cols)].ToArray(), tokens, options, options.Threads);
    }

    // W and H are private copies and are overwritten.
    internal static QuantizedWeight Run(float[] W, int rows, int cols, float[] H, long tokens, GptqOptions o, int threads)
    {
        var grid = RowGrid.Fit(o.Type, W, rows, cols, o.TernaryStretch);
        var original = (float[])W.Clone(); // for the RTN fallback (W gets dead columns zeroed and permuted)
        bool anyInput = false;
        for (int i = 0; i < cols && !anyInput; i++) anyInput = H[i * cols + i] != 0f;
        if (tokens == 0 || !anyInput) return Rtn.Quantize(grid, original, cols, "no calibration tokens");

        for (int i = 0; i < cols; i++)
            if (H[i * cols + i] == 0f)
            {
                H[i * cols + i] = 1f;
                for (int r = 0; r < rows; r++) W[r * cols + i] = 0f;
            }

        int[]? perm = null;
        if (o.ActOrder)
        {
            perm = Enumerable.Range(0, cols).OrderByDescending(i => H[i * cols + i]).ToArray(); // stable
            W = PermuteColumns(W, rows, cols, perm);
            H = PermuteSymmetric(H, cols, perm);
        }

        double meanDiag = 0;
        for (int i = 0; i < cols; i++) meanDiag += H[i * cols + i];
        meanDiag /= cols;
        var hinv = new float[cols * cols];
        var damped = new float[cols * cols];
        double damp = o.EffectiveDamp;
        for (int attempt = 0; ; attempt++, damp *= 10)
        {
            H.CopyTo(damped, 0);
            float add = (float)(damp * meanDiag);
            for (int i = 0; i < cols; i++) damped[i * cols + i] += add;
            if (Cholesky.TryInverseUpperFactor(damped, cols, hinv, threads)) break;
            if (attempt == o.MaxDampRetries)
            {
                return Rtn.Quantize(grid, original, cols, $"Cholesky failed with damping up to {damp:G3}");
            }
        }

        var Q = new float[rows * cols];
        var codes = new byte[rows * cols];
        Blocks(W, Q, codes, hinv, grid, rows, cols, o.BlockSize, threads);

        if (perm != null)
        {
            var inv = Inverse(perm);
            Q = PermuteColumns(Q, rows, cols, inv);
            codes = PermuteColumns(codes, rows, cols, inv);
        }
        return new QuantizedWeight(grid, cols, codes, Q, QuantMethod.Gptq, null, damp);
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // runs a handful of times per call: skip the tier-0 JIT
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

    private static T[] PermuteColumns<T>(T[] a, int rows, int cols, int[] perm)
    {
        var b = new T[a.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) b[r * cols + c] = a[r * cols + perm[c]];
        return b;
    }

    private static float[] PermuteSymmetric(float[] h, int n, int[] perm)
    {
        var b = new float[h.Length];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) b[i * n + j] = h[perm[i] * n + perm[j]];
        return b;
    }

    private static int[] Inverse(int[] perm)
    {
        var inv = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) inv[perm[i]] = i;
        return inv;
    }
}
