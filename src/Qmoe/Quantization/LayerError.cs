namespace Qmoe.Quantization;

/// <summary>The GPTQ layer objective, computed from the Hessian rather than the inputs.</summary>
public static class LayerError
{
    /// <summary>
    /// Σ_r (w_r − q_r) · H · (w_r − q_r)ᵀ for W, Q [rows, cols] and H [cols, cols]; with H = 2/n XᵀX this is
    /// 2/n · ‖(W − Q)·Xᵀ‖². Accumulated in double.
    /// </summary>
    public static double Compute(ReadOnlySpan<float> w, ReadOnlySpan<float> q, int rows, int cols, ReadOnlySpan<float> h)
    {
        if ((long)rows * cols > w.Length || (long)rows * cols > q.Length || (long)cols * cols > h.Length)
            throw new ArgumentException("LayerError: spans too short");
        var d = new double[cols];
        double total = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++) d[c] = (double)w[r * cols + c] - q[r * cols + c];
            for (int i = 0; i < cols; i++)
            {
                if (d[i] == 0) continue;
                double s = 0;
                var hi = h.Slice(i * cols, cols);
                for (int j = 0; j < cols; j++) s += hi[j] * d[j];
                total += d[i] * s;
            }
        }
        return total;
    }
}
