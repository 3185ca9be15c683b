using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// The reference: decodes codeword by codeword from the SPEC dictionary layout and accumulates the min and
/// max parts of each row in double. Slow and obviously right; the truth the other kernels are tested against.
/// </summary>
public sealed class ScalarCompressedMatVec : ICompressedMatVec
{
    private readonly uint[] _dictionary;

    /// <param name="dictionary">the file's dictionary, U32 [65536, 2]</param>
    public ScalarCompressedMatVec(ReadOnlySpan<uint> dictionary)
    {
        DecodeTable.FromDictionary(dictionary); // validates every entry
        _dictionary = dictionary.ToArray();
    }

    public void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        for (int b = 0; b < batch; b++)
        {
            var xb = x.Slice(b * w.Cols, w.Cols);
            for (int r = 0; r < w.Rows; r++)
            {
                double sumMin = 0, sumMax = 0;
                long pos = 0;
                foreach (ushort c in w.Codes[w.RowOffsets[r]..w.RowOffsets[r + 1]])
                {
                    uint w0 = _dictionary[2 * c], w1 = _dictionary[2 * c + 1];
                    int weights = 2 * DecodeTable.Pairs(w0);
                    for (int k = 0; k < weights; k++)
                    {
                        long j = pos + k;
                        if (j >= w.Cols) break; // padding beyond the row end
                        int t = DecodeTable.Trit(w0, w1, k);
                        if (t == 1) sumMin += xb[(int)j];
                        else if (t == 2) sumMax += xb[(int)j];
                    }
                    pos += weights;
                }
                if (pos < w.Cols || pos >= w.Cols + DecodeTable.MaxWeights) throw CompressedMatrix.RowLengthError(r, pos, w.Cols);
                double min = BFloat16.ToFloat(w.Scales[2 * r]), max = BFloat16.ToFloat(w.Scales[2 * r + 1]);
                y[b * w.Rows + r] = (float)(min * sumMin + max * sumMax);
            }
        }
    }
}
