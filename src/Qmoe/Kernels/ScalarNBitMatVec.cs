using Qmoe.Codec;

namespace Qmoe.Kernels;

/// <summary>
/// The reference: per weight, the quantizer's value scale · (code − zero) in f32 (exactly what a fake-quant
/// checkpoint holds), times x, summed in double. Slow and obviously right; the truth the SIMD kernel is tested against.
/// </summary>
public sealed class ScalarNBitMatVec : INBitMatVec
{
    public void Multiply(in NBitMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        int rowBytes = (int)w.RowBytes;
        for (int b = 0; b < batch; b++)
        {
            var xb = x.Slice(b * w.Cols, w.Cols);
            for (int r = 0; r < w.Rows; r++)
            {
                var row = w.Packed.Slice(r * rowBytes, rowBytes);
                float scale = w.Scales[r], zero = w.Zeros[r];
                double sum = 0;
                for (int j = 0; j < w.Cols; j++) sum += (double)(scale * (PackedNBitMatrix.Code(row, w.Bits, j) - zero)) * xb[j];
                y[b * w.Rows + r] = (float)sum;
            }
        }
    }
}
