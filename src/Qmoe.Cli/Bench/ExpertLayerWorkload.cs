using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Kernels;
using Qmoe.Quantization;

namespace Qmoe.Cli.Bench;

/// <summary>
/// A switch-base-128-shaped sparse layer for matvec benchmarks: every expert's wi [dFf, dModel] and wo [dModel, dFf],
/// each held three ways in its own memory (dict16 codes, dense f32, dense bf16) so a sweep over all experts streams
/// from DRAM as inference does. The trits are GPTQ's: a few template matrices are quantized to ternary by GPTQ
/// against Hessians of correlated synthetic inputs (<see cref="SyntheticLayer"/>), and every expert is a template
/// with its rows shuffled (its own seed), so codes, scales and dense copies have the real pipeline's statistics
/// (zero fraction, clustering, the fitted dictionary) without running GPTQ on every expert. The dense copies hold
/// exactly the dequantized ternary weights. The same templates quantized by GPTQ to 2 bits give each expert a 2-bit
/// twin, bit-packed and dict16-coded with a four-level dictionary fitted to them (issue 16; docs/FORMAT.md).
/// </summary>
internal sealed class ExpertLayerWorkload
{
    public sealed class MatrixSet(int rows, int cols, int experts)
    {
        public int Rows { get; } = rows;
        public int Cols { get; } = cols;
        public EncodedMatrix[] Codes { get; } = new EncodedMatrix[experts];
        public ushort[][] Scales { get; } = new ushort[experts][];
        public float[][] DenseF32 { get; } = new float[experts][];
        public ushort[][] DenseBf16 { get; } = new ushort[experts][];
        public long ZeroTrits, Trits;
        /// <summary>The 2-bit twins: bit-packed, and the symbols (code − zero) mod 4 dict16-coded.</summary>
        public PackedNBitMatrix[] Packed2Bit { get; } = new PackedNBitMatrix[experts];
        public EncodedMatrix[] Coded2Bit { get; } = new EncodedMatrix[experts];

        public CompressedMatrix Compressed(int e) => new(Codes[e].Codes, Codes[e].RowOffsets, Scales[e], Rows, Cols);
        public CompressedMatrix Coded(int e) => new(Coded2Bit[e].Codes, Coded2Bit[e].RowOffsets, Packed2Bit[e].RowScales, Packed2Bit[e].RowZeros, Rows, Cols);
        public long CodeBytes => Codes.Sum(c => 2L * c.Codes.Length) + Scales.Sum(s => 2L * s.Length);
    }

    /// <summary>A template: ternary trits [rows, cols] and bf16 (min, max) per row; its 2-bit twin (codes, grid) and that
    /// twin's symbols (code − zero) mod 4.</summary>
    private sealed record Template(byte[] Trits, ushort[] Scales, PackedNBitMatrix TwoBit, byte[] Symbols);

    public MatrixSet Wi { get; }
    public MatrixSet Wo { get; }
    public CodeDictionary Dictionary { get; }
    /// <summary>The four-level dictionary of the coded 2-bit twins.</summary>
    public CodeDictionary FourLevelDictionary { get; }
    /// <summary>Codewords per row and nonzero trits per codeword, over the whole layer.</summary>
    public double NonzerosPerCodeword { get; }

    public ExpertLayerWorkload(int experts = 128, int dModel = 768, int dFf = 3072, int templates = 2, int seed = 1)
    {
        var wiTemplates = Enumerable.Range(0, templates).Select(t => Quantize(dFf, dModel, seed * 1000 + t)).ToArray();
        var woTemplates = Enumerable.Range(0, templates).Select(t => Quantize(dModel, dFf, seed * 1000 + 500 + t)).ToArray();
        // The writer's dictionary choice, on rows of every template.
        Dictionary = DictionaryFitter.Fit(
            wiTemplates.SelectMany(t => Rows(t.Trits, dModel).Take(512)).Concat(woTemplates.SelectMany(t => Rows(t.Trits, dFf).Take(128))));
        FourLevelDictionary = DictionaryFitter.FitFourLevel(
            wiTemplates.SelectMany(t => Rows(t.Symbols, dModel).Take(512)).Concat(woTemplates.SelectMany(t => Rows(t.Symbols, dFf).Take(128))));
        Wi = new MatrixSet(dFf, dModel, experts);
        Wo = new MatrixSet(dModel, dFf, experts);
        var jobs = Enumerable.Range(0, experts).SelectMany(e => new[] { (Wi, e, wiTemplates), (Wo, e, woTemplates) }).ToArray();
        Parallel.ForEach(jobs, job => Fill(job.Item1, job.Item2, job.Item3[job.Item2 % templates], seed * 100003 + job.Item2 * 2 + (job.Item1 == Wo ? 1 : 0)));
        var table = DecodeTable.FromDictionary(Dictionary.Entries);
        long codes = 0, nonzeros = 0;
        foreach (var set in new[] { Wi, Wo })
            foreach (var m in set.Codes.Take(4))
                foreach (ushort c in m.Codes)
                {
                    codes++;
                    ulong d = table.Entries[c];
                    for (int k = 0; k < (int)(d >> DecodeTable.LengthShift); k++) if (((d >> (2 * k)) & 3) != 0) nonzeros++;
                }
        NonzerosPerCodeword = (double)nonzeros / codes;
    }

    private static IEnumerable<byte[]> Rows(byte[] trits, int cols)
    {
        for (int r = 0; r * cols < trits.Length; r++) yield return trits.AsSpan(r * cols, cols).ToArray();
    }

    /// <summary>GPTQ ternary and 2-bit on W ~ N(0, 1/cols) with the Hessian of correlated inputs (as `bench gptq`).</summary>
    private static Template Quantize(int rows, int cols, int seed)
    {
        var layer = SyntheticLayer.Create(rows, cols, Math.Min(2 * cols, 4096), seed);
        var q = Gptq.Quantize(layer.W, rows, cols, layer.H, new GptqOptions { Type = QuantType.Ternary });
        var twoBit = PackedNBitMatrix.FromQuantized(Gptq.Quantize(layer.W, rows, cols, layer.H, new GptqOptions { Type = QuantType.Int2 }));
        return new Template(q.Codes, q.TernaryScales(), twoBit, PackedNBitMatrix.ZeroRelativeSymbols(twoBit.Packed, twoBit.RowZeros, 2, cols));
    }

    private void Fill(MatrixSet set, int e, Template template, int seed)
    {
        int rows = set.Rows, cols = set.Cols;
        var order = Enumerable.Range(0, rows).ToArray();
        new Random(seed).Shuffle(order);
        var trits = new byte[rows * cols];
        var scales = new ushort[2 * rows];
        var f32 = new float[rows * cols];
        var bf16 = new ushort[rows * cols];
        long zeros = 0;
        for (int r = 0; r < rows; r++)
        {
            int src = order[r];
            template.Trits.AsSpan(src * cols, cols).CopyTo(trits.AsSpan(r * cols, cols));
            scales[2 * r] = template.Scales[2 * src]; scales[2 * r + 1] = template.Scales[2 * src + 1];
            float min = BFloat16.ToFloat(scales[2 * r]), max = BFloat16.ToFloat(scales[2 * r + 1]);
            for (int j = 0; j < cols; j++)
            {
                int t = trits[r * cols + j];
                if (t == 0) zeros++;
                float v = t == 0 ? 0f : t == 1 ? min : max;
                f32[r * cols + j] = v;
                bf16[r * cols + j] = BFloat16.FromFloat(v);
            }
        }
        set.Codes[e] = TernaryEncoder.Encode(trits, rows, cols, Dictionary, threads: 1);
        // The 2-bit twin, rows in the same order.
        var two = template.TwoBit;
        var packed = new byte[rows * two.RowBytes];
        var symbols = new byte[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            two.Packed.AsSpan((int)(order[r] * two.RowBytes), (int)two.RowBytes).CopyTo(packed.AsSpan((int)(r * two.RowBytes)));
            template.Symbols.AsSpan(order[r] * cols, cols).CopyTo(symbols.AsSpan(r * cols));
        }
        set.Packed2Bit[e] = new PackedNBitMatrix(2, rows, cols, packed, order.Select(r => two.RowScales[r]).ToArray(), order.Select(r => two.RowZeros[r]).ToArray());
        set.Coded2Bit[e] = TernaryEncoder.Encode(symbols, rows, cols, FourLevelDictionary, threads: 1);
        set.Scales[e] = scales;
        set.DenseF32[e] = f32;
        set.DenseBf16[e] = bf16;
        Interlocked.Add(ref set.ZeroTrits, zeros);
        Interlocked.Add(ref set.Trits, (long)rows * cols);
    }
}
