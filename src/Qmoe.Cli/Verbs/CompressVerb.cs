using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Quantization;

namespace Qmoe.Cli;

/// <summary>
/// <c>compress --model M --out DIR [--calib-text FILE | --calib F --split S] [--samples N] [--seq-len N] [--method gptq|rtn]
/// [--bits ternary|2|3|4 | --target-bits B [--probe FILE] [--proxy output|next-layer]] [--premask] [--pack-2bit] [--fake-quant] [--memory-budget GB] [--shard-gb GB] [--resume]</c>.
/// </summary>
internal static class CompressVerb
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var output = new Option<string>("--out") { Description = "output directory (must not exist)", Required = true };
        var calibText = new Option<string?>("--calib-text") { Description = "calibration text, one paragraph per line (.gz accepted)" };
        var calib = new Option<string?>("--calib") { Description = "calibration token file (safetensors with S.input_ids / S.labels; S.raw_blocks for decoder-only models)" };
        var split = new Option<string?>("--split") { Description = "split of --calib" };
        var samples = new Option<int>("--samples") { Description = "calibration samples", DefaultValueFactory = _ => 128 };
        var seqLen = new Option<int?>("--seq-len") { Description = "decoder-only models, --calib-text: tokens per calibration block (default 141; GPTQ/AWQ use 2048)" };
        var method = new Option<string>("--method") { Description = "gptq or rtn", DefaultValueFactory = _ => "gptq" };
        var bits = new Option<string>("--bits") { Description = "ternary, 2, 3 or 4", DefaultValueFactory = _ => "ternary" };
        var damp = new Option<double?>("--damp") { Description = "GPTQ damping (default 0.1 ternary, 0.01 n-bit)" };
        var premask = new Option<bool>("--premask") { Description = "exclude sentinel positions from the Hessians" };
        var fakeQuant = new Option<bool>("--fake-quant") { Description = "write a dense HF checkpoint with dequantized experts" };
        var budget = new Option<double>("--memory-budget") { Description = "GiB of activations held in RAM (beyond: spill files)", DefaultValueFactory = _ => 4.0 };
        var shardGb = new Option<double>("--shard-gb") { Description = "shard the compressed output into files of at most this many GiB (HF index)", DefaultValueFactory = _ => 4.0 };
        var resume = new Option<bool>("--resume") { Description = "continue an interrupted run" };
        var targetBits = new Option<double?>("--target-bits") { Description = "mixed precision: choose ternary / 2 / 3 / 4 bits per expert matrix for this average of expert bits/param (every byte counted), least predicted error" };
        var packTwoBit = new Option<bool>("--pack-2bit") { Description = "store 2-bit experts bit-packed even where their dict16 code is smaller: faster matvecs, about 25% more bytes for them" };
        var probe = new Option<string?>("--probe") { Description = "with --target-bits: the allocation probe file, read if present (same model, calibration, method and --proxy), else measured and saved there" };
        var proxy = new Option<string>("--proxy") { Description = "with --target-bits: score a candidate's output change as ‖Δy‖² (output) or weighted by the next layer's readers of the residual (next-layer; decoder-only models)", DefaultValueFactory = _ => "output" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("compress", "compress a model's experts (QMoE: GPTQ ternary + dictionary code)")
            { model, output, calibText, calib, split, samples, seqLen, method, bits, damp, premask, fakeQuant, budget, shardGb, resume, targetBits, probe, proxy, packTwoBit, threads, json };
        cmd.SetAction((p, ct) => Task.FromResult(CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            string modelDir = p.GetValue(model)!;
            int n = p.GetValue(samples);
            if (n <= 0) throw new QmoeException($"--samples {n} must be positive");
            double gib = p.GetValue(budget);
            if (!(gib > 0)) throw new QmoeException($"--memory-budget {gib} must be positive");
            double shard = p.GetValue(shardGb);
            if (!(shard > 0)) throw new QmoeException($"--shard-gb {shard} must be positive");
            var options = new CompressionOptions
            {
                Type = QuantTypeInfo.Parse(p.GetValue(bits)!).Type,
                Method = p.GetValue(method) switch
                {
                    "gptq" => QuantMethod.Gptq,
                    "rtn" => QuantMethod.Rtn,
                    var m => throw new QmoeException($"--method {m}: expected gptq or rtn"),
                },
                Damp = p.GetValue(damp),
                Premask = p.GetValue(premask),
                PackTwoBit = p.GetValue(packTwoBit),
                FakeQuant = p.GetValue(fakeQuant),
                MemoryBudgetBytes = (long)(gib * (1L << 30)),
                Resume = p.GetValue(resume),
                Proxy = p.GetValue(proxy) switch
                {
                    "output" => AllocationProxy.Output,
                    "next-layer" => AllocationProxy.NextLayer,
                    var x => throw new QmoeException($"--proxy {x}: expected output or next-layer"),
                },
                ShardBytes = Math.Max(1, (long)(shard * (1L << 30))),
            };
            var data = CalibrationLoader.Load(modelDir, p.GetValue(calibText), p.GetValue(calib), p.GetValue(split), n, options.Premask, p.GetValue(seqLen));
            human.WriteLine($"calibration: {data.Samples} samples from {data.Source}");
            double? target = p.GetValue(targetBits);
            if (target != null && p.GetResult(bits) is { Implicit: false }) throw new QmoeException("--target-bits chooses the bits per matrix; do not pass --bits with it");
            if (target == null && p.GetValue(probe) != null) throw new QmoeException("--probe applies to --target-bits only");
            if (target == null && p.GetResult(proxy) is { Implicit: false }) throw new QmoeException("--proxy applies to --target-bits only");
            var r = PipelineProgressView.Run(human, progress => target is double b
                ? CompressionPipeline.RunToTarget(modelDir, p.GetValue(output)!, data, options, b, p.GetValue(probe), progress, ct)
                : CompressionPipeline.Run(modelDir, p.GetValue(output)!, data, options, progress, ct));
            var rep = r.Report;
            human.WriteLine($"wrote {r.Out} in {r.Seconds:F1} s; peak RSS {r.PeakRssBytes / (1 << 20)} MiB; expert bits/param {r.ExpertBitsPerParam:F3}; " +
                            $"{r.Fallbacks} RTN fallbacks, {rep.Capped.Count} capped experts");
            foreach (var (stage, s) in rep.StageSeconds) human.WriteLine($"  {stage,-10} {s,8:F1} s");
            if (rep.Allocation is { } a)
                human.WriteLine($"allocation: {string.Join(", ", a.Counts.Select(kv => $"{kv.Value} × {kv.Key}"))}; target {a.TargetBits}, predicted {a.PredictedBits:F4}, achieved {a.AchievedBits:F4} bits/param");
            var result = new JsonObject
            {
                ["out"] = r.Out, ["seconds"] = r.Seconds, ["peak_rss_bytes"] = r.PeakRssBytes,
                ["expert_bits_per_param"] = r.ExpertBitsPerParam, ["fallbacks"] = r.Fallbacks,
                ["allocation"] = null, // --target-bits runs only
            };
            if (rep.Allocation != null)
                result["allocation"] = new JsonObject
                {
                    ["target_bits"] = rep.Allocation.TargetBits, ["predicted_bits"] = rep.Allocation.PredictedBits,
                    ["counts"] = new JsonObject(rep.Allocation.Counts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                };
            return result;
        })));
        return cmd;
    }
}
