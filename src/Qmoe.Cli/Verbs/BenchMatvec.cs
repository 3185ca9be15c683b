using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Kernels;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench matvec [--threads N] [--experts N] [--sweeps N] [--json]</c>: compressed vs dense f32/bf16 matvec
/// over a synthetic switch-base-128 sparse layer (SPEC §1, §7).
/// </summary>
internal static class BenchMatvec
{
    public static Command Create()
    {
        var threads = new Option<int?>("--threads") { Description = "threads (default: 1, then 2)" };
        var experts = new Option<int>("--experts") { Description = "experts in the layer", DefaultValueFactory = _ => 128 };
        var sweeps = new Option<int>("--sweeps") { Description = "timed sweeps over the layer per kernel (the fastest is reported)", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "one JSON object on stdout" };
        var cmd = new Command("matvec", "compressed vs dense f32/bf16 y = W x on every expert of a switch-base-128 layer (3072x768 wi, 768x3072 wo)")
        {
            threads, experts, sweeps, json,
        };
        cmd.SetAction(parse => CliRunner.Run(parse.GetValue(json), human =>
        {
            int? t = parse.GetValue(threads);
            int e = parse.GetValue(experts), s = parse.GetValue(sweeps);
            if (t is < 1) throw new QmoeException($"--threads must be ≥ 1 (got {t})");
            if (e < 1) throw new QmoeException($"--experts must be ≥ 1 (got {e})");
            if (s < 1) throw new QmoeException($"--sweeps must be ≥ 1 (got {s})");
            string? model = FindEmbeddedModel();
            human.WriteLine($"building {e} experts x (wi 3072x768, wo 768x3072): ternary, {ExpertLayerWorkload.ZeroFraction:P0} zeros, dense f32 + bf16 + dict16 copies ...");
            var started = System.Diagnostics.Stopwatch.StartNew();
            var layer = new ExpertLayerWorkload(e, structureFrom: model);
            double bits = 8.0 * (layer.Wi.CodeBytes + layer.Wo.CodeBytes) / (layer.Wi.Trits + layer.Wo.Trits);
            human.WriteLine($"built in {started.Elapsed.TotalSeconds:F1} s; row/col log-RMS spread {layer.RowLogSigma:F2}/{layer.ColLogSigma:F2}" +
                $"{(model != null ? " (measured on switch-tiny-8)" : " (default: embedded model not found)")}; zeros {(double)(layer.Wi.ZeroTrits + layer.Wo.ZeroTrits) / (layer.Wi.Trits + layer.Wo.Trits):P1}; " +
                $"{bits:F3} bits/weight (codes + row offsets + scales)");
            var results = MatVecBenchmark.Run(layer, t is { } n ? [n] : [1, 2], s);
            var list = new JsonArray();
            human.WriteLine("case  rows  cols  threads  f32 ms  bf16 ms  dict16 ms  vs bf16  vs f32  dict16 Gw/s  2-bit ms  2-bit vs bf16");
            foreach (var r in results)
            {
                human.WriteLine($"{r.Case,-4} {r.Rows,5} {r.Cols,5} {r.Threads,8} {r.DenseF32Ms,7:F3} {r.DenseBf16Ms,8:F3} {r.CompressedMs,10:F3} {r.SpeedupVsBf16,7:F2}x {r.SpeedupVsF32,6:F2}x {r.CompressedGWeightsPerS,12:F2} {r.Packed2BitMs,9:F3} {r.Packed2BitSpeedupVsBf16,13:F2}x");
                list.Add(new JsonObject
                {
                    ["case"] = r.Case, ["rows"] = r.Rows, ["cols"] = r.Cols, ["threads"] = r.Threads,
                    ["dense_f32_ms"] = r.DenseF32Ms, ["dense_bf16_ms"] = r.DenseBf16Ms, ["compressed_ms"] = r.CompressedMs,
                    ["speedup_vs_bf16"] = r.SpeedupVsBf16, ["speedup_vs_f32"] = r.SpeedupVsF32,
                    ["compressed_gweights_per_s"] = r.CompressedGWeightsPerS,
                    ["packed2bit_ms"] = r.Packed2BitMs, ["packed2bit_speedup_vs_bf16"] = r.Packed2BitSpeedupVsBf16,
                });
            }
            human.WriteLine("times are per matrix (mean over the layer's experts, fastest sweep)");
            return new JsonObject { ["results"] = list };
        }));
        return cmd;
    }

    /// <summary>models/switch-tiny-8/model.safetensors in the current directory or above the executable (a repo checkout).</summary>
    private static string? FindEmbeddedModel()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, "models", "switch-tiny-8", "model.safetensors");
                if (File.Exists(p)) return p;
            }
        return null;
    }
}
