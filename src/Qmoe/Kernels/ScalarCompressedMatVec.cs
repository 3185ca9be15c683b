using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// The reference: decodes codeword by codeword from the SPEC dictionary layout and accumulates the min and
/// max parts of each row in double (a coded 2-bit matrix: the parts of its three nonzero levels). Slow and obviously
/// right; the truth the other kernels are tested against.
/// </summary>
public sealed class ScalarCompressedMatVec : ICompressedMatVec
{
    private readonly uint[] _dictionary;
    private readonly int _levels;

    /// <param name="dictionary">the file's dictionary, U32 [65536, 2]</param>
    /// <param name="levels">3 (ternary) or 4 (the four-level dictionary of coded 2-bit matrices)</param>
    public ScalarCompressedMatVec(ReadOnlySpan<uint> dictionary, int levels = 3)
    {
        DecodeTable.FromDictionary(dictionary, levels); // validates every entry
        _dictionary = dictionary.ToArray();
        _levels = levels;
    }

    public void Multiply(in CompressedMatrix w, ReadOnlySpan<float> x, Span<float> y, int batch = 1)
    {
        w.Validate();
        w.CheckOperands(x.Length, y.Length, batch);
        if (w.LevelCount != _levels) throw CompressedMatrix.LevelMismatch(_levels, w.LevelCount);
        Span<double> sums = stackalloc double[4];
        for (int b = 0; b < batch; b++)
        {
            var xb = x.Slice(b * w.Cols, w.Cols);
            for (int r = 0; r < w.Rows; r++)
            {
                sums.Clear();
                long pos = 0;
                foreach (ushort c in w.Codes[w.RowOffsets[r]..w.RowOffsets[r + 1]])
                {
                    uint w0 = _dictionary[2 * c], w1 = _dictionary[2 * c + 1];
                    int weights = 2 * DecodeTable.Pairs(w0);
                    for (int k = 0; k < weights; k++)
                    {
                        long j = pos + k;
                        if (j >= w.Cols) break; // padding beyond the row end
                        sums[DecodeTable.Trit(w0, w1, k)] += xb[(int)j];
                    }
                    pos += weights;
                }
                if (pos < w.Cols || pos >= w.Cols + DecodeTable.MaxWeights) throw CompressedMatrix.RowLengthError(r, pos, w.Cols);
                y[b * w.Rows + r] = w.GridScales.IsEmpty
                    ? (float)(BFloat16.ToFloat(w.Scales[2 * r]) * sums[1] + BFloat16.ToFloat(w.Scales[2 * r + 1]) * sums[2])
                    : (float)(Level(w, r, 1) * sums[1] + Level(w, r, 2) * sums[2] + Level(w, r, 3) * sums[3]);
            }
        }
    }

    private static double Level(in CompressedMatrix w, int r, int t) => CompressedMatrix.GridLevel(w.GridScales[r], w.GridZeros[r], t);
}
