using System.Diagnostics;
using ILGPU;
using ILGPU.Runtime;
using Qmoe.Gpu;
using Qmoe.Kernels;

namespace Qmoe.Cli.Bench;

/// <summary>
/// <see cref="MatVecBenchmark"/> on a GPU: every expert's codes and dense bf16 copy resident in device memory, dense
/// bf16 and compressed sweeps alternating, fastest sweep kept. Two timings per kernel: latency (one launch +
/// synchronisation per matrix, as batch-1 generation waits for each expert) and streamed (the whole layer's launches
/// queued, one synchronisation per sweep: the kernels' own time once launch latency overlaps).
/// </summary>
internal static class GpuMatVecBenchmark
{
    public sealed record Result(string Case, int Rows, int Cols, double DenseBf16Ms, double CompressedMs,
        double DenseBf16StreamedMs, double CompressedStreamedMs)
    {
        public double SpeedupVsBf16 => DenseBf16Ms / CompressedMs;
        public double StreamedSpeedupVsBf16 => DenseBf16StreamedMs / CompressedStreamedMs;
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
                // best[kernel, mode]: kernel 0 dense bf16, 1 compressed; mode 0 latency, 1 streamed (seconds per sweep)
                var best = new double[2, 2] { { double.MaxValue, double.MaxValue }, { double.MaxValue, double.MaxValue } };
                for (int s = -1; s < sweeps; s++)
                    for (int mode = 0; mode < 2; mode++)
                        for (int kernel = 0; kernel < 2; kernel++)
                        {
                            long t0 = Stopwatch.GetTimestamp();
                            for (int e = 0; e < experts; e++)
                            {
                                if (kernel == 0) dense.Launch(bf16[e], x, y, set.Rows, set.Cols);
                                else compressed.Launch(codes[e], offsets[e], scales[e], x, y, bad, set.Rows, set.Cols);
                                if (mode == 0) accelerator.Synchronize();
                            }
                            accelerator.Synchronize();
                            if (s >= 0) best[kernel, mode] = Math.Min(best[kernel, mode], Stopwatch.GetElapsedTime(t0).TotalSeconds);
                        }
                double Ms(int kernel, int mode) => best[kernel, mode] / experts * 1e3;
                results.Add(new Result(name, set.Rows, set.Cols, Ms(0, 0), Ms(1, 0), Ms(0, 1), Ms(1, 1)));
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
