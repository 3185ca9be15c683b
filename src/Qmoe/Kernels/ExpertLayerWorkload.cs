using Qmoe.Codec;
using Qmoe.IO;

namespace Qmoe.Kernels;

/// <summary>
/// A synthetic switch-base-128 sparse layer for matvec benchmarks: every expert's wi [3072, 768] and
/// wo [768, 3072], each held three ways in its own memory (dict16 codes, dense f32, dense bf16) so a sweep
/// over all experts streams from DRAM as inference does. Weights are ternary with a realistic, non-i.i.d.
/// structure: w = z · rowScale · colScale (z standard normal, log-normal row and column scales whose spread is
/// measured on the embedded model's experts), ternarized at one threshold per matrix so that
/// <see cref="ZeroFraction"/> of the weights are zero overall while rows and columns vary in density, as GPTQ
/// ternary output does; the levels are the bf16 means of the kept weights of each row and sign.
/// </summary>
internal sealed class ExpertLayerWorkload
{
    public const double ZeroFraction = 0.89;

    public sealed class MatrixSet(int rows, int cols, int experts)
    {
        public int Rows { get; } = rows;
        public int Cols { get; } = cols;
        public EncodedMatrix[] Codes { get; } = new EncodedMatrix[experts];
        public ushort[][] Scales { get; } = new ushort[experts][];
        public float[][] DenseF32 { get; } = new float[experts][];
        public ushort[][] DenseBf16 { get; } = new ushort[experts][];
        public long ZeroTrits, Trits;

        public CompressedMatrix Compressed(int e) => new(Codes[e].Codes, Codes[e].RowOffsets, Scales[e], Rows, Cols);
        public long CodeBytes => Codes.Sum(c => 2L * c.Codes.Length + 4L * c.RowOffsets.Length) + Scales.Sum(s => 2L * s.Length);
    }

    public MatrixSet Wi { get; }
    public MatrixSet Wo { get; }
    public CodeDictionary Dictionary { get; }
    public double RowLogSigma { get; }
    public double ColLogSigma { get; }

    public ExpertLayerWorkload(int experts = 128, int dModel = 768, int dFf = 3072, int seed = 1, string? structureFrom = null)
    {
        Dictionary = CodeDictionary.Default;
        (RowLogSigma, ColLogSigma) = structureFrom != null ? MeasureStructure(structureFrom) : (0.3, 0.3);
        Wi = new MatrixSet(dFf, dModel, experts);
        Wo = new MatrixSet(dModel, dFf, experts);
        var jobs = Enumerable.Range(0, experts).SelectMany(e => new[] { (Wi, e), (Wo, e) }).ToArray();
        Parallel.ForEach(jobs, job => Fill(job.Item1, job.Item2, seed * 100003 + job.Item2 * 2 + (job.Item1 == Wo ? 1 : 0)));
    }

    /// <summary>Spread (standard deviation of the log) of row and column RMS over the expert matrices of a model file.</summary>
    private static (double Row, double Col) MeasureStructure(string safetensors)
    {
        using var file = SafeTensorsFile.Open(safetensors);
        double rowSum = 0, colSum = 0; int n = 0;
        foreach (var name in file.Names.Where(x => x.Contains(".experts.")))
        {
            var info = file.Tensors[name];
            int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
            var w = file.ReadFloat32(name);
            var rowSq = new double[rows]; var colSq = new double[cols];
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) { double v = w[r * cols + j]; rowSq[r] += v * v; colSq[j] += v * v; }
            rowSum += LogStd(rowSq); colSum += LogStd(colSq); n++;
        }
        if (n == 0) throw new QmoeException($"{safetensors}: no expert tensors to measure");
        return (rowSum / n, colSum / n);

        static double LogStd(double[] sq)
        {
            var logs = sq.Select(s => 0.5 * Math.Log(Math.Max(s, 1e-30))).ToArray();
            double mean = logs.Average();
            return Math.Sqrt(logs.Sum(l => (l - mean) * (l - mean)) / logs.Length);
        }
    }

    private void Fill(MatrixSet set, int e, int seed)
    {
        int rows = set.Rows, cols = set.Cols;
        var rnd = new Random(seed);
        var rowScale = new float[rows]; var colScale = new float[cols];
        for (int r = 0; r < rows; r++) rowScale[r] = (float)Math.Exp(RowLogSigma * Gaussian(rnd));
        for (int j = 0; j < cols; j++) colScale[j] = (float)Math.Exp(ColLogSigma * Gaussian(rnd));
        var w = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++) w[r * cols + j] = (float)Gaussian(rnd) * rowScale[r] * colScale[j];

        // One threshold per matrix: the ZeroFraction quantile of |w| (estimated on a sample).
        var sample = new float[1 << 16];
        for (int i = 0; i < sample.Length; i++) sample[i] = Math.Abs(w[rnd.Next(w.Length)]);
        Array.Sort(sample);
        float threshold = sample[(int)(ZeroFraction * sample.Length)];

        var trits = new byte[rows * cols];
        var scales = new ushort[2 * rows];
        long zeros = 0;
        for (int r = 0; r < rows; r++)
        {
            double sumMin = 0, sumMax = 0; int nMin = 0, nMax = 0;
            for (int j = 0; j < cols; j++)
            {
                float v = w[r * cols + j];
                if (Math.Abs(v) < threshold) { zeros++; continue; }
                if (v < 0) { trits[r * cols + j] = 1; sumMin += v; nMin++; }
                else { trits[r * cols + j] = 2; sumMax += v; nMax++; }
            }
            scales[2 * r] = BFloat16.FromFloat(nMin > 0 ? (float)(sumMin / nMin) : 0f);
            scales[2 * r + 1] = BFloat16.FromFloat(nMax > 0 ? (float)(sumMax / nMax) : 0f);
        }
        // Dense copies hold exactly the dequantized ternary weights (w is reused as the f32 copy).
        var bf16 = new ushort[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            float min = BFloat16.ToFloat(scales[2 * r]), max = BFloat16.ToFloat(scales[2 * r + 1]);
            for (int j = 0; j < cols; j++)
            {
                int t = trits[r * cols + j];
                float v = t == 0 ? 0f : t == 1 ? min : max;
                w[r * cols + j] = v;
                bf16[r * cols + j] = BFloat16.FromFloat(v);
            }
        }
        set.Codes[e] = TernaryEncoder.Encode(trits, rows, cols, Dictionary, threads: 1);
        set.Scales[e] = scales;
        set.DenseF32[e] = w;
        set.DenseBf16[e] = bf16;
        Interlocked.Add(ref set.ZeroTrits, zeros);
        Interlocked.Add(ref set.Trits, (long)rows * cols);
    }

    private static double Gaussian(Random rnd)
    {
        double u = 1.0 - rnd.NextDouble(), v = rnd.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * v);
    }
}
