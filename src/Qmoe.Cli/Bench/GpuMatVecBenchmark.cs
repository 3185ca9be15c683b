using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using Qmoe.Gpu;
using Qmoe.Kernels;

namespace Qmoe.Cli.Bench;

/// <summary>
/// <see cref="MatVecBenchmark"/> on a GPU: every expert's codes and dense bf16 copy resident in device memory, one
/// launch + synchronisation per matrix (batch 1), dense bf16 and compressed sweeps alternating, fastest sweep kept.
/// </summary>
internal static class GpuMatVecBenchmark
{
    public sealed record Result(string Case, int Rows, int Cols, double DenseBf16Ms, double CompressedMs)
    {
        public double SpeedupVsBf16 => DenseBf16Ms / CompressedMs;
        public double DenseBf16GWeightsPerS => (double)Rows * Cols / (DenseBf16Ms * 1e-3) / 1e9;
        public double CompressedGWeightsPerS => (double)Rows * Cols / (CompressedMs * 1e-3) / 1e9;
    }

    public static List<Result> Run(ExpertLayerWorkload layer, Accelerator accelerator, int sweeps)
    {
        using var compressed = new GpuCompressedMatVec(accelerator, DecodeTable.FromDictionary(layer.Dictionary.Entries));
        var dense = new GpuDenseMatVec(accelerator);
        var buffers = new List<MemoryBuffer>();
        try
        {
            var results = new List<Result>();
            foreach (var (set, name) in new[] { (layer.Wi, "wi"), (layer.Wo, "wo") })
            {
                int experts = set.Codes.Length;
                var codes = new ArrayView<ushort>[experts]; var offsets = new ArrayView<int>[experts];
                var scales = new ArrayView<ushort>[experts]; var bf16 = new ArrayView<ushort>[experts];
                for (int e = 0; e < experts; e++)
                {
                    codes[e] = Upload(accelerator, set.Codes[e].Codes, buffers);
                    offsets[e] = Upload(accelerator, set.Codes[e].RowOffsets, buffers);
                    scales[e] = Upload(accelerator, set.Scales[e], buffers);
                    bf16[e] = Upload(accelerator, set.DenseBf16[e], buffers);
                }
                var rnd = new Random(5);
                var x = Upload(accelerator, Enumerable.Range(0, set.Cols).Select(_ => (float)(rnd.NextDouble() - 0.5)).ToArray(), buffers);
                var y = Upload(accelerator, new float[set.Rows], buffers);
                var bad = Upload(accelerator, new int[1], buffers);
                double bestDense = double.MaxValue, bestCompressed = double.MaxValue;
                for (int s = -1; s < sweeps; s++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    for (int e = 0; e < experts; e++) { dense.Launch(bf16[e], x, y, set.Rows, set.Cols); accelerator.Synchronize(); }
                    long t1 = Stopwatch.GetTimestamp();
                    for (int e = 0; e < experts; e++) { compressed.Launch(codes[e], offsets[e], scales[e], x, y, bad, set.Rows, set.Cols); accelerator.Synchronize(); }
                    long t2 = Stopwatch.GetTimestamp();
                    if (s < 0) continue;
                    bestDense = Math.Min(bestDense, (t1 - t0) / (double)Stopwatch.Frequency);
                    bestCompressed = Math.Min(bestCompressed, (t2 - t1) / (double)Stopwatch.Frequency);
                }
                results.Add(new Result(name, set.Rows, set.Cols, bestDense / experts * 1e3, bestCompressed / experts * 1e3));
            }
            return results;
        }
        finally { foreach (var b in buffers) b.Dispose(); }
    }

    private static ArrayView<T> Upload<T>(Accelerator accelerator, T[] data, List<MemoryBuffer> owned) where T : unmanaged
    {
        var buffer = accelerator.Allocate1D(data);
        owned.Add(buffer);
        return buffer.View;
    }
}
