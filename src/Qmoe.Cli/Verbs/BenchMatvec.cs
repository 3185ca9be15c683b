using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Cli.Bench;
using Qmoe.Kernels;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench matvec [--threads N] [--experts N] [--sweeps N] [--isa avx512|avx2|vector128|scalar] [--json]</c>:
/// compressed vs dense f32/bf16 matvec over a switch-base-128 sparse layer of GPTQ-ternary experts (SPEC §1, §7),
/// both sides on the same instruction-set path.
/// </summary>
internal static class BenchMatvec
{
    public static Command Create()
    {
        var threads = new Option<int?>("--threads") { Description = "threads (default: 1, then 2)" };
        var experts = new Option<int>("--experts") { Description = "experts in the layer", DefaultValueFactory = _ => 128 };
        var sweeps = new Option<int>("--sweeps") { Description = "timed sweeps over the layer per kernel (the fastest is reported)", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "one JSON object on stdout" };
        var device = DeviceOption.Create();
        var isa = new Option<string?>("--isa") { Description = "instruction-set path for both kernels: avx512, avx2, vector128 or scalar (default: the widest this machine runs)" };
        var cmd = new Command("matvec", "compressed vs dense f32/bf16 y = W x on every expert of a switch-base-128 layer (3072x768 wi, 768x3072 wo)")
        {
            threads, experts, sweeps, isa, device, json,
        };
        cmd.SetAction(parse => CliRunner.Run(parse.GetValue(json), human =>
        {
            int? t = parse.GetValue(threads);
            int e = parse.GetValue(experts), s = parse.GetValue(sweeps);
            if (t is < 1) throw new QmoeException($"--threads must be ≥ 1 (got {t})");
            if (e < 1) throw new QmoeException($"--experts must be ≥ 1 (got {e})");
            if (s < 1) throw new QmoeException($"--sweeps must be ≥ 1 (got {s})");
            var path = KernelIsas.Resolve(parse.GetValue(isa));
            bool cuda = DeviceOption.KernelFactory(parse.GetValue(device)!) != null; // refuses a missing device before building
            using var gpu = cuda ? Qmoe.Gpu.CudaDevice.Open() : null;
            human.WriteLine($"building {e} experts x (wi 3072x768, wo 768x3072): GPTQ ternary templates (correlated inputs), rows shuffled per expert; dense f32 + bf16 + dict16 copies ...");
            var started = System.Diagnostics.Stopwatch.StartNew();
            var layer = new ExpertLayerWorkload(e);
            double zeros = (double)(layer.Wi.ZeroTrits + layer.Wo.ZeroTrits) / (layer.Wi.Trits + layer.Wo.Trits);
            double bits = 8.0 * (layer.Wi.CodeBytes + layer.Wo.CodeBytes) / (layer.Wi.Trits + layer.Wo.Trits);
            human.WriteLine($"built in {started.Elapsed.TotalSeconds:F1} s; zeros {zeros:P1}; {bits:F3} bits/weight (codes + scales); " +
                $"{layer.NonzerosPerCodeword:F2} nonzeros per codeword; dictionary {layer.Dictionary.Source}");
            foreach (var (set, name) in new[] { (layer.Wi, "wi"), (layer.Wo, "wo") })
                human.WriteLine($"{name}: zeros {(double)set.ZeroTrits / set.Trits:P1}, {(double)set.Trits / set.Codes.Sum(c => (long)c.Codes.Length):F1} weights per codeword");
            long codes2 = layer.Wi.Coded2Bit.Sum(c => (long)c.Codes.Length) + layer.Wo.Coded2Bit.Sum(c => (long)c.Codes.Length);
            double coded2Bits = 16.0 * codes2 / (layer.Wi.Trits + layer.Wo.Trits);
            human.WriteLine($"2-bit twins (GPTQ 2-bit of the same templates): coded {coded2Bits:F3} code bits/weight against 2 bit-packed, {(layer.Wi.Trits + layer.Wo.Trits) / (double)codes2:F1} weights per codeword");
            if (gpu != null)
            {
                human.WriteLine($"device: {gpu.Name} (CUDA)");
                var gpuList = new JsonArray();
                human.WriteLine("case  rows  cols  bf16 ms  dict16 ms  vs bf16  bf16 Gw/s  dict16 Gw/s  streamed: bf16 ms  dict16 ms  vs bf16");
                foreach (var r in GpuMatVecBenchmark.Run(layer, gpu.Accelerator, s))
                {
                    human.WriteLine($"{r.Case,-4} {r.Rows,5} {r.Cols,5} {r.DenseBf16Ms,8:F4} {r.CompressedMs,10:F4} {r.SpeedupVsBf16,7:F2}x {r.DenseBf16GWeightsPerS,10:F1} {r.CompressedGWeightsPerS,12:F1} {r.DenseBf16StreamedMs,17:F4} {r.CompressedStreamedMs,10:F4} {r.StreamedSpeedupVsBf16,7:F2}x");
                    gpuList.Add(new JsonObject
                    {
                        ["case"] = r.Case, ["rows"] = r.Rows, ["cols"] = r.Cols, ["device"] = "cuda",
                        ["dense_bf16_ms"] = r.DenseBf16Ms, ["compressed_ms"] = r.CompressedMs, ["speedup_vs_bf16"] = r.SpeedupVsBf16,
                        ["dense_bf16_gweights_per_s"] = r.DenseBf16GWeightsPerS, ["compressed_gweights_per_s"] = r.CompressedGWeightsPerS,
                        ["dense_bf16_streamed_ms"] = r.DenseBf16StreamedMs, ["compressed_streamed_ms"] = r.CompressedStreamedMs,
                        ["streamed_speedup_vs_bf16"] = r.StreamedSpeedupVsBf16,
                    });
                }
                return new JsonObject { ["device"] = "cuda", ["gpu"] = gpu.Name, ["zero_fraction"] = zeros, ["results"] = gpuList };
            }
            human.WriteLine($"instruction set: {KernelIsas.Name(path)} (best here: {KernelIsas.Name(KernelIsas.Best)})");
            if (SimdCompressedMatVec.UsesPositions(path, PositionRows.MaxCols))
                human.WriteLine($"row loop at batch 1: position windows for matrices of up to {PositionRows.MaxCols} columns (wi), windows otherwise (docs/KERNELS.md)");
            var results = MatVecBenchmark.Run(layer, t is { } n ? [n] : [1, 2], s, path);
            var list = new JsonArray();
            human.WriteLine("case  rows  cols  threads  f32 ms  bf16 ms  dict16 ms  vs bf16  vs f32  bf16 Gw/s  dict16 Gw/s  2-bit ms  2-bit vs bf16  2-bit coded ms  vs bf16");
            foreach (var r in results)
            {
                human.WriteLine($"{r.Case,-4} {r.Rows,5} {r.Cols,5} {r.Threads,8} {r.DenseF32Ms,7:F3} {r.DenseBf16Ms,8:F3} {r.CompressedMs,10:F3} {r.SpeedupVsBf16,7:F2}x {r.SpeedupVsF32,6:F2}x {r.DenseBf16GWeightsPerS,10:F2} {r.CompressedGWeightsPerS,12:F2} {r.Packed2BitMs,9:F3} {r.Packed2BitSpeedupVsBf16,13:F2}x {r.Coded2BitMs,15:F3} {r.Coded2BitSpeedupVsBf16,7:F2}x");
                list.Add(new JsonObject
                {
                    ["case"] = r.Case, ["rows"] = r.Rows, ["cols"] = r.Cols, ["threads"] = r.Threads, ["isa"] = KernelIsas.Name(r.Isa), ["row_loop"] = SimdCompressedMatVec.RowLoop(r.Isa, r.Cols),
                    ["dense_f32_ms"] = r.DenseF32Ms, ["dense_bf16_ms"] = r.DenseBf16Ms, ["compressed_ms"] = r.CompressedMs,
                    ["speedup_vs_bf16"] = r.SpeedupVsBf16, ["speedup_vs_f32"] = r.SpeedupVsF32,
                    ["dense_bf16_gweights_per_s"] = r.DenseBf16GWeightsPerS,
                    ["compressed_gweights_per_s"] = r.CompressedGWeightsPerS,
                    ["packed2bit_ms"] = r.Packed2BitMs, ["packed2bit_speedup_vs_bf16"] = r.Packed2BitSpeedupVsBf16,
                    ["coded2bit_ms"] = r.Coded2BitMs, ["coded2bit_speedup_vs_bf16"] = r.Coded2BitSpeedupVsBf16,
                });
            }
            human.WriteLine("times are per matrix (mean over the layer's experts, fastest sweep)");
            return new JsonObject
            {
                ["isa"] = KernelIsas.Name(path), ["zero_fraction"] = zeros, ["bits_per_weight"] = bits,
                ["nonzeros_per_codeword"] = layer.NonzerosPerCodeword, ["coded2bit_code_bits_per_weight"] = coded2Bits, ["results"] = list,
            };
        }));
        return cmd;
    }
}
