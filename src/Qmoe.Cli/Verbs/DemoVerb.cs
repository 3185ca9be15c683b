using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.Compression;
using Qmoe.Runtime;
using Spectre.Console;

namespace Qmoe.Cli;

/// <summary>
/// <c>demo</c>: the main job on the embedded model — compress models/switch-tiny-8 (ternary GPTQ, calibration text
/// shipped in data/), then compare dense and compressed: size, bits/param, CE on validation and out-of-distribution
/// text, eval and generation speed, and a generation from one prompt with each. Writes demo-report.json and a plot.
/// </summary>
internal static class DemoVerb
{
    public const string Prompt = "The LORD is my shepherd; I shall not <extra_id_0>.";

    public static Command Create()
    {
        var output = new Option<string?>("--out") { Description = "directory for the compressed model and the report (default: demo-out/ in the repository, replaced)" };
        var samples = new Option<int>("--samples") { Description = "calibration samples", DefaultValueFactory = _ => 128 };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("demo", "compress the embedded tiny model and compare it with the original") { output, samples, threads, json };
        cmd.SetAction((p, ct) => Task.FromResult(CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            var total = Stopwatch.StartNew();
            string outDir = Path.GetFullPath(p.GetValue(output) ?? Path.Combine(RepoPaths.Root, "demo-out"));
            string compressed = Path.Combine(outDir, "switch-tiny-8-qmoe");
            if (Directory.Exists(compressed)) Directory.Delete(compressed, true);
            Directory.CreateDirectory(outDir);

            human.WriteLine($"1/3 compressing {RepoPaths.TinyModel} (ternary GPTQ, {p.GetValue(samples)} samples of data/calibration.txt)");
            var calib = CalibrationLoader.Load(RepoPaths.TinyModel, RepoPaths.CalibrationText, null, null, p.GetValue(samples), premask: false);
            var result = PipelineProgressView.Run(human, progress =>
                CompressionPipeline.Run(RepoPaths.TinyModel, compressed, calib, new CompressionOptions(), progress, ct));

            human.WriteLine("2/3 evaluating dense and compressed models");
            var dense = Measure(RepoPaths.TinyModel);
            var comp = Measure(compressed);
            using (var cm = CompressedModel.Open(compressed))
            {
                var stats = ModelStatistics.Compute(cm);
                comp.ExpertBits = stats.ExpertBitsPerParam;
                comp.TotalBits = stats.TotalBitsPerParam;
                dense.ExpertBits = dense.TotalBits = 8.0 * DirBytes(RepoPaths.TinyModel, "model.safetensors") / (stats.ExpertParameters + stats.PlainParameters);
            }

            human.WriteLine("3/3 results");
            var table = new Table().AddColumns("", "dense (f32)", "compressed (qmoe)");
            table.AddRow("size on disk (model.safetensors)", Mib(dense.Bytes), Mib(comp.Bytes));
            table.AddRow("expert bits / param", $"{dense.ExpertBits:F2}", $"{comp.ExpertBits:F3}");
            table.AddRow("total bits / param", $"{dense.TotalBits:F2}", $"{comp.TotalBits:F3}");
            table.AddRow("validation CE (nats)", $"{dense.ValidationCe:F4}", $"{comp.ValidationCe:F4}");
            table.AddRow("ood_man CE (nats)", $"{dense.OodCe:F4}", $"{comp.OodCe:F4}");
            table.AddRow("eval tokens/s", $"{dense.EvalTokensPerS:F0}", $"{comp.EvalTokensPerS:F0}");
            table.AddRow("generation tokens/s", $"{dense.GenTokensPerS:F1}", $"{comp.GenTokensPerS:F1}");
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(human) });
            console.Write(table);
            human.WriteLine($"prompt:     {Prompt}");
            human.WriteLine($"dense:      {dense.Generation}");
            human.WriteLine($"compressed: {comp.Generation}");

            string plot = Path.Combine(outDir, "demo-plot.png");
            DemoPlot.Write(plot, result.Report.Layers);
            var report = new JsonObject
            {
                ["model"] = RepoPaths.TinyModel, ["compressed"] = compressed,
                ["compress_seconds"] = result.Seconds, ["compress_peak_rss_bytes"] = result.PeakRssBytes,
                ["fallbacks"] = result.Fallbacks, ["threads"] = Qmoe.Threads.Count, ["prompt"] = Prompt,
                ["dense"] = dense.ToJson(), ["compressed_model"] = comp.ToJson(),
                ["layers"] = new JsonArray(result.Report.Layers.Select(l => (JsonNode)new JsonObject
                {
                    ["name"] = l.Name, ["relative_error"] = l.RelativeError, ["zero_fraction"] = l.ZeroFraction,
                }).ToArray()),
                ["plot"] = plot, ["seconds"] = total.Elapsed.TotalSeconds,
            };
            Qmoe.IO.AtomicFile.WriteAllText(Path.Combine(outDir, "demo-report.json"), report.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            human.WriteLine($"wrote {Path.Combine(outDir, "demo-report.json")} and {plot}; demo took {total.Elapsed.TotalSeconds:F1} s");
            return report;
        })));
        return cmd;
    }

    private sealed class Measurement
    {
        public long Bytes; public double ExpertBits, TotalBits, ValidationCe, OodCe, EvalTokensPerS, GenTokensPerS;
        public string Generation = "";

        public JsonObject ToJson() => new()
        {
            ["bytes"] = Bytes, ["expert_bits_per_param"] = ExpertBits, ["total_bits_per_param"] = TotalBits,
            ["validation_ce"] = ValidationCe, ["ood_man_ce"] = OodCe,
            ["eval_tokens_per_s"] = EvalTokensPerS, ["generation_tokens_per_s"] = GenTokensPerS, ["generation"] = Generation,
        };
    }

    private static Measurement Measure(string dir)
    {
        using var m = ModelLoader.Open(dir);
        var val = m.Evaluate(EvalSet.Load(RepoPaths.EvalSets, "validation", m.VocabSize));
        var ood = m.Evaluate(EvalSet.Load(RepoPaths.EvalSets, "ood_man", m.VocabSize));
        var gen = Generation.Run(m, Prompt, 20);
        // Speed of generation on a fixed length (64 new tokens, no early stop), after the warm-up above.
        var sw = Stopwatch.StartNew();
        m.Generate(gen.InputIds, 64, stopAtEos: false);
        double genTps = 64 / sw.Elapsed.TotalSeconds;
        return new Measurement
        {
            Bytes = DirBytes(dir, "model.safetensors"), ValidationCe = val.MeanCe, OodCe = ood.MeanCe,
            EvalTokensPerS = (val.TokensPerSecond + ood.TokensPerSecond) / 2, GenTokensPerS = genTps, Generation = gen.Text,
        };
    }

    private static long DirBytes(string dir, string file) => new FileInfo(Path.Combine(dir, file)).Length;
    private static string Mib(long bytes) => $"{bytes / 1048576.0:F2} MiB";
}
