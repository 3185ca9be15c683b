using Qmoe.IO;

namespace Qmoe.Tests.Kernels;

/// <summary>
/// A plain stand-in ternarizer for kernel and codec tests (not the compression method — that is GPTQ):
/// per row, weights with |w| below the row's <c>zeroFraction</c> quantile of |w| become 0, the others the
/// bf16-rounded mean of the row's kept negative (trit 1 = min) or positive (trit 2 = max) weights.
/// </summary>
internal static class ThresholdTernary
{
    /// <returns>trits [rows, cols] (0 zero, 1 min, 2 max) and bf16 scales [rows, 2] = (min, max)</returns>
    public static (byte[] Trits, ushort[] Scales) Ternarize(ReadOnlySpan<float> w, int rows, int cols, double zeroFraction)
    {
        var trits = new byte[rows * cols];
        var scales = new ushort[2 * rows];
        var abs = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            for (int j = 0; j < cols; j++) abs[j] = Math.Abs(row[j]);
            Array.Sort(abs);
            float threshold = abs[Math.Min(cols - 1, (int)(zeroFraction * cols))];
            double sumMin = 0, sumMax = 0; int nMin = 0, nMax = 0;
            for (int j = 0; j < cols; j++)
            {
                if (Math.Abs(row[j]) < threshold) continue;
                if (row[j] < 0) { trits[r * cols + j] = 1; sumMin += row[j]; nMin++; }
                else { trits[r * cols + j] = 2; sumMax += row[j]; nMax++; }
            }
            scales[2 * r] = BFloat16.FromFloat(nMin > 0 ? (float)(sumMin / nMin) : 0f);
            scales[2 * r + 1] = BFloat16.FromFloat(nMax > 0 ? (float)(sumMax / nMax) : 0f);
        }
        return (trits, scales);
    }

    /// <summary>Every expert matrix of the embedded model, ternarized (85% zeros) and encoded with the codec's default
    /// dictionary and encoder: (name, rows, cols, trits, bf16 scales, codes, row offsets).</summary>
    public static IEnumerable<(string Name, int Rows, int Cols, byte[] Trits, ushort[] Scales, ushort[] Codes, int[] RowOffsets)> TinyExperts()
    {
        var dict = Qmoe.Codec.CodeDictionary.Default;
        using var model = SafeTensorsFile.Open(Path.Combine(Paths.TinyModel, "model.safetensors"));
        foreach (var name in model.Names.Where(n => n.Contains(".experts.")))
        {
            var info = model.Tensors[name];
            int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
            var (trits, scales) = Ternarize(model.ReadFloat32(name), rows, cols, 0.85);
            var m = Qmoe.Codec.TernaryEncoder.Encode(trits, rows, cols, dict, threads: 1);
            yield return (name, rows, cols, trits, scales, m.Codes, m.RowOffsets);
        }
    }
}
