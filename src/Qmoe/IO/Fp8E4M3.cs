namespace Qmoe.IO;

/// <summary>
/// OCP FP8 E4M3 ("e4m3fn", safetensors F8_E4M3): 1 sign, 4 exponent (bias 7), 3 mantissa bits, no infinities;
/// S.1111.111 is NaN; exponent 0 is subnormal (m/8 · 2⁻⁶). Every value is exact in f32.
/// </summary>
public static class Fp8E4M3
{
    private static readonly float[] Table = BuildTable();

    public static float ToFloat(byte b) => Table[b];

    private static float[] BuildTable()
    {
        var t = new float[256];
        for (int b = 0; b < 256; b++)
        {
            int exp = (b >> 3) & 0xF, man = b & 7;
            float mag = (exp, man) switch
            {
                (15, 7) => float.NaN,
                (0, _) => man / 8f * MathF.Pow(2, -6),
                _ => (1 + man / 8f) * MathF.Pow(2, exp - 7),
            };
            t[b] = (b & 0x80) != 0 ? -mag : mag;
        }
        return t;
    }

    /// <summary>
    /// Block-scaled dequantization as DeepSeek-V3 / HF "fp8" checkpoints store weights: W [rows, cols] e4m3 with
    /// <c>weight_scale_inv</c> S [⌈rows/blockRows⌉, ⌈cols/blockCols⌉] (f32), W[i,j] = fp8(W[i,j]) · S[i/blockRows, j/blockCols]
    /// (one f32 rounding).
    /// </summary>
    public static void DequantizeBlocks(ReadOnlySpan<byte> w, int rows, int cols, ReadOnlySpan<float> scaleInv,
        int blockRows, int blockCols, Span<float> dst)
    {
        int scaleCols = (cols + blockCols - 1) / blockCols;
        for (int i = 0; i < rows; i++)
        {
            var s = scaleInv.Slice(i / blockRows * scaleCols, scaleCols);
            var src = w.Slice(i * cols, cols);
            var d = dst.Slice(i * cols, cols);
            for (int j = 0; j < cols; j++) d[j] = Table[src[j]] * s[j / blockCols];
        }
    }
}
