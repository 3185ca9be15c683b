using System.Diagnostics;
using Qmoe.Kernels;

namespace Qmoe.Cli.Bench;

/// <summary>
/// Times y = W x (batch 1) for dense f32, dense bf16, dict16-compressed, and 2-bit (issue 16) bit-packed and dict16-coded weights, as inference runs: one token
/// through every expert of a sparse layer (wi then wo of expert 0, then of expert 1, ...), so each matrix is read
/// once per sweep and the working set (GBs dense) far exceeds the last-level cache. The three kinds of sweep
/// alternate so they see the same machine conditions; reported times are the per-matrix mean of the fastest
/// sweep of each kind (best of N rejects interference from other processes on a shared machine alike for all).
/// Dense and compressed kernels run the same instruction-set path.
/// </summary>
internal static class MatVecBenchmark
{
    public sealed record Result(string Case, int Rows, int Cols, int Threads, KernelIsa Isa, double DenseF32Ms, double DenseBf16Ms, double CompressedMs,
        double Packed2BitMs = double.NaN, double Coded2BitMs = double.NaN)
    {
        /// <summary>2-bit dict16-coded (issue 16) vs dense bf16.</summary>
        public double Coded2BitSpeedupVsBf16 => DenseBf16Ms / Coded2BitMs;
        /// <summary>2-bit bit-packed (issue 16) vs dense bf16.</summary>
        public double Packed2BitSpeedupVsBf16 => DenseBf16Ms / Packed2BitMs;
        public double SpeedupVsBf16 => DenseBf16Ms / CompressedMs;
        public double SpeedupVsF32 => DenseF32Ms / CompressedMs;
        public double CompressedGWeightsPerS => (double)Rows * Cols / (CompressedMs * 1e-3) / 1e9;
        public double DenseBf16GWeightsPerS => (double)Rows * Cols / (DenseBf16Ms * 1e-3) / 1e9;
    }

    private enum Kind { F32, Bf16, Compressed, Packed2Bit, Coded2Bit }

    public static List<Result> Run(ExpertLayerWorkload layer, IEnumerable<int> threadCounts, int sweeps, KernelIsa isa)
    {
        var table = DecodeTable.FromDictionary(layer.Dictionary.Entries);
        var table4 = DecodeTable.FromDictionary(layer.FourLevelDictionary);
        var results = new List<Result>();
        var rnd = new Random(5);
        var xWi = Enumerable.Range(0, layer.Wi.Cols).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray();
        var xWo = Enumerable.Range(0, layer.Wo.Cols).Select(_ => (float)rnd.NextDouble()).ToArray();
        var yWi = new float[layer.Wi.Rows]; var yWo = new float[layer.Wo.Rows];
        int experts = layer.Wi.Codes.Length;
        foreach (int threads in threadCounts)
        {
            using var parallel = new RowParallel(threads);
            var dense = new DenseMatVec(parallel, isa);
            var compressed = new SimdCompressedMatVec(table, parallel, isa);
            var packed = new SimdNBitMatVec(parallel, isa);
            var coded = new SimdCompressedMatVec(table4, parallel, isa);
            // seconds[kind][matrix kind (0 wi, 1 wo)][sweep]
            int kinds = Enum.GetValues<Kind>().Length;
            var seconds = new double[kinds][][];
            for (int k = 0; k < kinds; k++) seconds[k] = [new double[sweeps], new double[sweeps]];
            for (int s = -1; s < sweeps; s++) // sweep -1 warms up (JIT, page faults)
                foreach (var kind in Enum.GetValues<Kind>())
                {
                    double wi = 0, wo = 0;
                    for (int e = 0; e < experts; e++)
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        Multiply(kind, layer.Wi, e, xWi, yWi, dense, compressed, packed, coded);
                        long t1 = Stopwatch.GetTimestamp();
                        Multiply(kind, layer.Wo, e, xWo, yWo, dense, compressed, packed, coded);
                        long t2 = Stopwatch.GetTimestamp();
                        wi += t1 - t0; wo += t2 - t1;
                    }
                    if (s < 0) continue;
                    seconds[(int)kind][0][s] = wi / Stopwatch.Frequency;
                    seconds[(int)kind][1][s] = wo / Stopwatch.Frequency;
                }
            foreach (var (set, name, m) in new[] { (layer.Wi, "wi", 0), (layer.Wo, "wo", 1) })
            {
                double Ms(Kind k) => seconds[(int)k][m].Min() / experts * 1e3;
                results.Add(new Result(name, set.Rows, set.Cols, threads, isa, Ms(Kind.F32), Ms(Kind.Bf16), Ms(Kind.Compressed), Ms(Kind.Packed2Bit), Ms(Kind.Coded2Bit)));
            }
        }
        return results;
    }

    private static void Multiply(Kind kind, ExpertLayerWorkload.MatrixSet set, int e, float[] x, float[] y,
        DenseMatVec dense, SimdCompressedMatVec compressed, SimdNBitMatVec packed, SimdCompressedMatVec coded)
    {
        switch (kind)
        {
            case Kind.Packed2Bit: packed.Multiply(new NBitMatrix(set.Packed2Bit[e]), x, y); break;
            case Kind.Coded2Bit: coded.Multiply(set.Coded(e), x, y); break;
            case Kind.F32: dense.Multiply(set.DenseF32[e], set.Rows, set.Cols, x, y); break;
            case Kind.Bf16: dense.Multiply(set.DenseBf16[e], set.Rows, set.Cols, x, y); break;
            default: compressed.Multiply(set.Compressed(e), x, y); break;
        }
    }
}
