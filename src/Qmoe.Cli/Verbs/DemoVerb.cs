using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.Compression;
using Qmoe.Runtime;
using Spectre.Console;

namespace Qmoe.Cli;

/// <summary>
/// <c>demo</c>: the main job — compress a model (by default the embedded models/switch-tiny-8, ternary GPTQ,
/// calibration text shipped in data/), compare dense and compressed (bits/param by part, CE per split, speed, top-3
/// fills of fixed prompts), then compress a real-width slice (synthetic switch-base-128 experts, see
/// <see cref="DemoSlice"/>). Writes demo-report.json and demo-report.png with the same numbers.
/// </summary>
internal static class DemoVerb
{
    public static readonly string[] Splits = ["validation", "ood_man"];

    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = "directory for the compressed model and the report (default: demo-out/ in the repository, replaced)" };
        var model = new Option<string?>("--model") { Description = "checkpoint to compress (default: the embedded models/switch-tiny-8)" };
        var calibText = new Option<string?>("--calib-text") { Description = "calibration text, plain or .gz (default: data/calibration.txt)" };
        var data = new Option<string?>("--data") { Description = "eval sets (default: data/eval_sets.safetensors; the model's tokenizer must match)" };
        var samples = new Option<int>("--samples") { Description = "calibration samples", DefaultValueFactory = _ => 128 };
        var evalLimit = new Option<int?>("--eval-limit") { Description = "examples per eval split (default: all)" };
        var sliceExperts = new Option<int>("--slice-experts") { Description = "experts of the real-width slice (0: skip it)", DefaultValueFactory = _ => 16 };
        var sliceTokens = new Option<int>("--slice-tokens") { Description = "synthetic calibration tokens per slice expert", DefaultValueFactory = _ => 512 };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("demo", "compress a model (default: the embedded tiny one) and compare it with the original; then a real-width slice")
            { output, model, calibText, data, samples, evalLimit, sliceExperts, sliceTokens, threads, json };
        cmd.SetAction((p, ct) => Task.FromResult(CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            var total = Stopwatch.StartNew();
            string modelDir = Path.GetFullPath(p.GetValue(model) ?? RepoPaths.TinyModel);
            string calib = Path.GetFullPath(p.GetValue(calibText) ?? RepoPaths.CalibrationText);
            string evalSets = Path.GetFullPath(p.GetValue(data) ?? RepoPaths.EvalSets);
            string name = Path.GetFileName(modelDir.TrimEnd(Path.DirectorySeparatorChar));
            string outDir = Path.GetFullPath(p.GetValue(output) ?? Path.Combine(RepoPaths.Root, "demo-out"));
            string compressed = Path.Combine(outDir, name + "-qmoe");
            if (Directory.Exists(compressed)) Directory.Delete(compressed, true);
            Directory.CreateDirectory(outDir);
            int slice = p.GetValue(sliceExperts);

            human.WriteLine($"1/4 compressing {modelDir} (ternary GPTQ, {p.GetValue(samples)} samples of {Path.GetFileName(calib)})");
            var calibration = CalibrationLoader.Load(modelDir, calib, null, null, p.GetValue(samples), premask: false);
            var result = PipelineProgressView.Run(human, progress =>
                CompressionPipeline.Run(modelDir, compressed, calibration, new CompressionOptions(), progress, ct));

            human.WriteLine("2/4 evaluating dense and compressed models");
            var dense = Measure(modelDir, evalSets, p.GetValue(evalLimit));
            var comp = Measure(compressed, evalSets, p.GetValue(evalLimit));
            ModelStatistics stats;
            using (var cm = CompressedModel.Open(compressed)) stats = ModelStatistics.Compute(cm);
            comp.ExpertBits = stats.ExpertBitsPerParam;
            comp.TotalBits = stats.TotalBitsPerParam;
            dense.ExpertBits = dense.TotalBits = 8.0 * dense.Bytes / (stats.ExpertParameters + stats.PlainParameters);

            DemoSlice.Result? sliceResult = null;
            if (slice > 0)
            {
                human.WriteLine($"3/4 real-width slice: {slice} switch-base-128 experts (768x3072, synthetic weights), ternary GPTQ on correlated synthetic inputs");
                sliceResult = DemoSlice.Run(Path.Combine(outDir, "slice-qmoe"), slice, p.GetValue(sliceTokens), human.WriteLine);
            }
            else human.WriteLine("3/4 real-width slice skipped (--slice-experts 0)");

            human.WriteLine("4/4 results");
            var bits = DemoReport.BitsBreakdown(stats);
            var table = new Table().AddColumns("", $"dense ({DenseDType(modelDir)})", "compressed (qmoe)");
            table.AddRow("size on disk (weights)", Mib(dense.Bytes), Mib(comp.Bytes));
            table.AddRow("expert bits / param", $"{dense.ExpertBits:F2}", $"{comp.ExpertBits:F3}");
            foreach (var part in DemoPlot.BitParts)
                table.AddRow($"  {part.Replace('_', ' ')}", "", $"{(double)bits[part]!:F4}");
            table.AddRow("total bits / param", $"{dense.TotalBits:F2}", $"{comp.TotalBits:F3}");
            for (int s = 0; s < Splits.Length; s++)
                table.AddRow($"{Splits[s]} CE (nats)", $"{dense.Ce[s]:F4}", $"{comp.Ce[s]:F4}");
            table.AddRow("eval tokens/s", $"{dense.EvalTokensPerS:F0}", $"{comp.EvalTokensPerS:F0}");
            table.AddRow("generation tokens/s", $"{dense.GenTokensPerS:F1}", $"{comp.GenTokensPerS:F1}");
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human) });
            console.Write(table);
            if (sliceResult != null)
                human.WriteLine($"real-width slice (synthetic weights at switch-base-128 shapes, {sliceResult.Experts} experts x wi 3072x768 + wo 768x3072, " +
                    $"{sliceResult.Stats.ExpertParameters / 1e6:F1}M params): {sliceResult.Stats.ExpertBitsPerParam:F3} bits/param, " +
                    $"{100 * sliceResult.Stats.ZeroFraction:F1}% zeros ({sliceResult.Seconds:F1} s)");

            var fillTable = new Table().AddColumns(dense.IsDecoderOnly ? "prompt → next token" : "prompt (span)", "dense: top-3 words", "compressed: top-3 words");
            for (int i = 0; i < dense.Fills.Length; i++)
                for (int s = 0; s < dense.Fills[i].Spans.Length; s++)
                {
                    var (sd, sc) = (dense.Fills[i].Spans[s], comp.Fills[i].Spans[s]);
                    fillTable.AddRow(Markup.Escape(s == 0 ? dense.Fills[i].Prompt : sd.Marker), Markup.Escape(DemoFills.Format(sd.TopWords)), Markup.Escape(DemoFills.Format(sc.TopWords)));
                }
            console.Write(fillTable);
            // Say so when the model's first choice is not a word (the embedded model puts "," first everywhere).
            var firsts = dense.Fills.SelectMany(f => f.Spans).Select(sp => sp.Top[0]).Where(c => !DemoFills.IsWord(c.Text)).ToList();
            if (firsts.Count > 0)
                human.WriteLine($"note: at {firsts.Count} of {dense.Fills.Sum(f => f.Spans.Length)} spans the dense model's most probable token is not a word " +
                    $"({string.Join(", ", firsts.Select(c => $"'{c.Text}' {100 * c.Probability:F1}%").Distinct())}); raw top-3 in demo-report.json");

            string plot = Path.Combine(outDir, "demo-report.png");
            var groups = result.Report.Layers;
            DemoPlot.Write(plot, new DemoPlot.Data(name, dense.ExpertBits, Parts(bits), sliceResult == null ? null : Parts(DemoReport.BitsBreakdown(sliceResult.Stats)),
                Splits, dense.Ce, comp.Ce, [("eval", dense.EvalTokensPerS, comp.EvalTokensPerS), ("generation", dense.GenTokensPerS, comp.GenTokensPerS)],
                [.. groups.Select(l => ShortName(l.Name))], [.. groups.Select(l => l.ExpertZeroFractions)], [.. groups.Select(l => l.ExpertRelativeErrors)], sliceResult));
            var report = new JsonObject
            {
                ["model"] = modelDir, ["compressed"] = compressed, ["calibration"] = calib, ["eval_sets"] = evalSets,
                ["compress_seconds"] = result.Seconds, ["compress_peak_rss_bytes"] = result.PeakRssBytes,
                ["fallbacks"] = result.Fallbacks, ["threads"] = Qmoe.Threads.Count,
                ["dense"] = dense.ToJson(), ["compressed_model"] = comp.ToJson(),
                ["bits_per_param"] = new JsonObject { ["dense"] = dense.ExpertBits, ["compressed"] = bits },
                ["expert_zero_fraction"] = stats.ZeroFraction,
                ["fills"] = DemoFills.ToJson(dense.Fills, comp.Fills),
                ["layers"] = new JsonArray([.. groups.Select(l => (JsonNode)new JsonObject
                {
                    ["name"] = l.Name, ["relative_error"] = l.RelativeError, ["zero_fraction"] = l.ZeroFraction,
                    ["expert_relative_errors"] = DemoReport.Array(l.ExpertRelativeErrors), ["expert_zero_fractions"] = DemoReport.Array(l.ExpertZeroFractions),
                })]),
                ["plot"] = plot, ["seconds"] = total.Elapsed.TotalSeconds,
                ["cpu_seconds"] = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
            };
            // The machine's load, next to the timing (Linux; omitted elsewhere).
            double? load = LoadAverage();
            if (load is double l) report["load_average"] = l;
            if (sliceResult != null) report["real_width_slice"] = sliceResult.ToJson();
            Qmoe.IO.AtomicFile.WriteAllText(Path.Combine(outDir, "demo-report.json"), report.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            human.WriteLine($"wrote {Path.Combine(outDir, "demo-report.json")} and {plot}; demo took {total.Elapsed.TotalSeconds:F1} s " +
                $"(process CPU {(double)report["cpu_seconds"]!:F1} s{(load is double la ? $", load average {la:F2}" : "")})");
            return report;
        })));
        return cmd;
    }

    private static Dictionary<string, double> Parts(JsonObject bits) => DemoPlot.BitParts.ToDictionary(k => k, k => (double)bits[k]!);

    /// <summary>"encoder.block.1.layer.1.mlp.experts.wi" → "encoder 1 wi"; "model.layers.0.block_sparse_moe.experts.w1" → "layers 0 w1".</summary>
    private static string ShortName(string group)
    {
        var p = group.Split('.');
        int block = Array.FindIndex(p, s => int.TryParse(s, out _));
        return block > 0 ? $"{p[block - 1].Replace("block", p[0])} {p[block]} {p[^1]}" : group;
    }

    private sealed class Measurement
    {
        public long Bytes; public double ExpertBits, TotalBits, EvalTokensPerS, GenTokensPerS;
        public double[] Ce = [];
        public bool IsDecoderOnly;
        public DemoFills.PromptFills[] Fills = [];

        public JsonObject ToJson()
        {
            var j = new JsonObject
            {
                ["bytes"] = Bytes, ["expert_bits_per_param"] = ExpertBits, ["total_bits_per_param"] = TotalBits,
                ["eval_tokens_per_s"] = EvalTokensPerS, ["generation_tokens_per_s"] = GenTokensPerS,
            };
            for (int s = 0; s < Splits.Length; s++) j[$"{Splits[s]}_ce"] = Ce[s];
            return j;
        }
    }

    private static Measurement Measure(string dir, string evalSets, int? limit)
    {
        using var m = ModelLoader.Open(dir);
        var evals = Splits.Select(s => m.Evaluate(EvalSet.Load(evalSets, s, m.VocabSize, limit, causal: m.IsDecoderOnly))).ToArray();
        var fills = DemoFills.Run(m);
        // Generation speed on a fixed length (64 new tokens, no early stop) from the first prompt, after the warm-up above.
        var input = DemoFills.PromptIds(m, DemoFills.Prompts[0]);
        var sw = Stopwatch.StartNew();
        m.Generate(input, 64, stopAtEos: false);
        double genTps = 64 / sw.Elapsed.TotalSeconds;
        return new Measurement
        {
            Bytes = Directory.GetFiles(dir, "*.safetensors").Sum(f => new FileInfo(f).Length), Ce = [.. evals.Select(e => e.MeanCe)],
            EvalTokensPerS = evals.Average(e => e.TokensPerSecond), GenTokensPerS = genTps, IsDecoderOnly = m.IsDecoderOnly, Fills = fills,
        };
    }

    /// <summary>The dense checkpoint's dtype as config.json says (torch_dtype), for the table header.</summary>
    private static string DenseDType(string dir)
    {
        try { return JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))?["torch_dtype"]?.GetValue<string>() ?? "dense"; }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException) { return "dense"; }
    }

    private static double? LoadAverage()
    {
        try
        {
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.TryParse(first, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static string Mib(long bytes) => $"{bytes / 1048576.0:F2} MiB";
}
