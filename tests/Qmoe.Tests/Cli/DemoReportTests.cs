using System.Text.Json.Nodes;

namespace Qmoe.Tests.Cli;

/// <summary>
/// The demo end to end with reduced settings (8 calibration samples, 8 eval examples, a one-expert real-width slice
/// with 64 tokens): demo-report.json carries every number of the report, all finite, and the PNG is written.
/// The full-size demo is the README's command (timed there, not here).
/// </summary>
public class DemoReportTests
{
    private static readonly string[] Required =
    [
        "compress_seconds", "compress_peak_rss_bytes", "seconds", "expert_zero_fraction",
        "dense.expert_bits_per_param", "dense.total_bits_per_param", "dense.validation_ce", "dense.ood_man_ce",
        "dense.eval_tokens_per_s", "dense.generation_tokens_per_s",
        "compressed_model.expert_bits_per_param", "compressed_model.total_bits_per_param", "compressed_model.validation_ce",
        "compressed_model.ood_man_ce", "compressed_model.eval_tokens_per_s", "compressed_model.generation_tokens_per_s",
        "bits_per_param.dense", "bits_per_param.compressed.codes", "bits_per_param.compressed.scales",
        "bits_per_param.compressed.row_index", "bits_per_param.compressed.dictionary", "bits_per_param.compressed.total",
        "real_width_slice.bits_per_param.codes", "real_width_slice.bits_per_param.scales", "real_width_slice.bits_per_param.row_index",
        "real_width_slice.bits_per_param.dictionary", "real_width_slice.bits_per_param.total", "real_width_slice.zero_fraction",
        "real_width_slice.relative_error", "real_width_slice.parameters",
    ];

    [Fact]
    public void ReducedDemoWritesAFiniteReportAndImage()
    {
        using var tmp = Paths.Temp();
        var r = CliProcess.Run("demo", "--out", tmp.Path, "--samples", "8", "--eval-limit", "8", "--slice-experts", "1", "--slice-tokens", "64", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, "demo-report.json")))!.AsObject();
        Assert.True(JsonNode.DeepEquals(report, r.Json), "stdout JSON and demo-report.json differ");
        foreach (var path in Required)
        {
            JsonNode? node = report;
            foreach (var key in path.Split('.')) node = node?[key];
            Assert.True(node is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d), $"{path}: missing or not a finite number");
        }
        Assert.Empty(Qmoe.Cli.DemoReport.NonFinite(report));
        // Per-expert arrays: one value per expert of every group (8 in switch-tiny-8; 1 in the slice).
        foreach (var layer in report["layers"]!.AsArray())
        {
            Assert.Equal(8, layer!["expert_relative_errors"]!.AsArray().Count);
            Assert.Equal(8, layer["expert_zero_fractions"]!.AsArray().Count);
        }
        Assert.Equal(4, report["layers"]!.AsArray().Count);
        Assert.All(report["real_width_slice"]!["groups"]!.AsArray(), g => Assert.Single(g!["expert_zero_fractions"]!.AsArray()));
        // Bits by part add up to the total; the fills cover every fixed prompt, with three candidates each.
        var bits = report["bits_per_param"]!["compressed"]!;
        Assert.Equal((double)bits["total"]!, new[] { "codes", "scales", "row_index", "dictionary" }.Sum(k => (double)bits[k]!), 9);
        Assert.Equal(Qmoe.Cli.DemoFills.Prompts.Length, report["fills"]!.AsArray().Count);
        Assert.All(report["fills"]!.AsArray(), f => Assert.All(f!["spans"]!.AsArray(), s => Assert.Equal(3, s!["dense"]!["top_words"]!.AsArray().Count)));
        Assert.True(new FileInfo(Path.Combine(tmp.Path, "demo-report.png")).Length > 10_000);
    }

    /// <summary>
    /// `demo --model` on a decoder-only fixture (not the embedded model) runs end to end: CE on its raw-text splits,
    /// next-token fills for every fixed prompt, bits by part, all finite.
    /// </summary>
    [FixtureFact("mixtral-tiny-8")]
    public void DemoRunsOnAnotherCheckpoint()
    {
        using var tmp = Paths.Temp();
        var r = CliProcess.Run("demo", "--model", Paths.Fixture("mixtral-tiny-8")!, "--calib-text", Paths.Fixture("corpus", "train.txt.gz")!,
            "--out", tmp.Path, "--samples", "8", "--eval-limit", "8", "--slice-experts", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = r.Json!.AsObject();
        Assert.Empty(Qmoe.Cli.DemoReport.NonFinite(report));
        foreach (var path in new[] { "dense.validation_ce", "dense.ood_man_ce", "compressed_model.validation_ce", "compressed_model.ood_man_ce",
                     "compressed_model.expert_bits_per_param", "bits_per_param.compressed.codes" })
        {
            JsonNode? node = report;
            foreach (var key in path.Split('.')) node = node?[key];
            Assert.True(node is JsonValue v && v.TryGetValue(out double d) && double.IsFinite(d) && d > 0, $"{path}: missing, zero or not finite");
        }
        Assert.Equal(Qmoe.Cli.DemoFills.Prompts.Length, report["fills"]!.AsArray().Count);
        Assert.True(new FileInfo(Path.Combine(tmp.Path, "demo-report.png")).Length > 10_000);
    }

    [Fact]
    public void NonFiniteNumbersAreFound()
    {
        var j = new JsonObject { ["a"] = 1.0, ["b"] = new JsonArray(2.0, JsonValue.Create(double.NaN)), ["c"] = new JsonObject { ["d"] = double.PositiveInfinity } };
        Assert.Equal(["$.b[1]", "$.c.d"], Qmoe.Cli.DemoReport.NonFinite(j));
    }
}
