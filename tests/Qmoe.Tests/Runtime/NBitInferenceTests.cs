using System.Text.Json.Nodes;
using Qmoe.Tests.Cli;

namespace Qmoe.Tests.Runtime;

/// <summary>
/// n-bit experts stored compressed (issue 16) run from their packed (or, 2-bit, coded) codes like their fake-quant twins:
/// CE within 1e-4, identical greedy ids; the file verifies and inspects.
/// </summary>
public class NBitInferenceTests
{
    private static JsonObject Run(params string[] args)
    {
        var r = CliProcess.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return r.Json;
    }

    private static void AssertTwins(string model, string bits, string prompt, int samples)
    {
        using var tmp = Paths.Temp();
        foreach (var (dir, extra) in new[] { ("c", Array.Empty<string>()), ("f", new[] { "--fake-quant" }) })
            Run(["compress", "--model", model, "--out", tmp.File(dir), "--calib-text", Paths.CalibrationText, "--samples", samples.ToString(), "--bits", bits, "--json", .. extra]);
        double Ce(string dir, string split) => (double)Run("eval", "--model", dir, "--data", Paths.EvalSets, "--split", split, "--limit", "32", "--json")["mean_ce"]!;
        string Gen(string dir) => Run("generate", "--model", dir, "--prompt", prompt, "--json")["output_ids"]!.ToJsonString();
        foreach (var split in new[] { "validation", "ood_man" })
        {
            double c = Ce(tmp.File("c"), split), f = Ce(tmp.File("f"), split);
            Assert.True(Math.Abs(c - f) <= 1e-4, $"{split}: compressed {c} vs fake-quant {f}");
        }
        Assert.Equal(Gen(tmp.File("f")), Gen(tmp.File("c")));
        Run("verify", tmp.File("c"), "--json");
        var inspect = Run("inspect", tmp.File("c"), "--json");
        double b = (double)inspect["expert_bits_per_param"]!;
        var type = Assert.Single(inspect["expert_types"]!.AsArray());
        if (bits == "2")
        {
            // GPTQ's 2-bit codes code below their 2 bits with the four-level dictionary, so the writer stores them coded.
            Assert.Equal("2 coded", (string?)type!["type"]);
            Assert.InRange(b, 1.0, 2.0);
            Assert.InRange((double)type["code_bits_per_param"]!, (double)type["entropy_bits_per_param"]!, 2.0);
        }
        else
        {
            Assert.Equal(bits, (string?)type!["type"]);
            Assert.InRange(b, int.Parse(bits), int.Parse(bits) + 1.0); // packed codes + f32 scale and u8 zero per row (+ the unused dictionary)
        }
        Assert.InRange((double)type["entropy_bits_per_param"]!, 0.5, int.Parse(bits)); // GPTQ's codes cluster at the row's zero point
    }

    /// <summary>
    /// <c>--target-bits</c> (mixed ternary / n-bit groups): the compressed model and its fake-quant twin (same probe, so
    /// the same allocation) agree; the allocation is in qmoe_report.json, near the target; a bad target is one line.
    /// </summary>
    [Fact]
    public void MixedTargetBitsSwitchEqualsFakeQuant()
    {
        using var tmp = Paths.Temp();
        string probe = tmp.File("probe.json");
        string[] Args(string dir, string target, params string[] extra) =>
            ["compress", "--model", Paths.TinyModel, "--out", tmp.File(dir), "--calib-text", Paths.CalibrationText, "--samples", "8",
             "--target-bits", target, "--probe", probe, "--json", .. extra];
        var c = Run(Args("c", "1.5"));
        Assert.True(File.Exists(probe));
        Run(Args("f", "1.5", "--fake-quant"));
        var counts = c["allocation"]!["counts"]!.AsObject();
        Assert.True(counts.Count >= 2, counts.ToJsonString()); // really mixed
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.File("c"), "qmoe_report.json")))!;
        Assert.Equal("mixed", (string?)report["bits"]);
        Assert.Equal(32, report["allocation"]!["types"]!.AsObject().Count);
        double achieved = (double)c["expert_bits_per_param"]!;
        Assert.InRange(achieved, 1.5 * 0.98, 1.5 * 1.02);
        foreach (var split in new[] { "validation", "ood_man" })
        {
            double Ce(string dir) => (double)Run("eval", "--model", tmp.File(dir), "--data", Paths.EvalSets, "--split", split, "--limit", "32", "--json")["mean_ce"]!;
            double cc = Ce("c"), ff = Ce("f");
            Assert.True(Math.Abs(cc - ff) <= 1e-4, $"{split}: compressed {cc} vs fake-quant {ff}");
        }
        string Gen(string dir) => Run("generate", "--model", tmp.File(dir), "--prompt", "The LORD is my shepherd; I shall not <extra_id_0>.", "--json")["output_ids"]!.ToJsonString();
        Assert.Equal(Gen("f"), Gen("c"));
        Run("verify", tmp.File("c"), "--json");
        Assert.Equal(achieved, (double)Run("inspect", tmp.File("c"), "--json")["expert_bits_per_param"]!, 9);
        var bad = CliProcess.Run(Args("x", "0.3"));
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("achievable range", bad.Stderr);
        Assert.Single(bad.Stderr.Trim().Split('\n'), l => l.StartsWith("error"));
    }

    [Fact]
    public void CompressedTwoBitSwitchEqualsFakeQuant() =>
        AssertTwins(Paths.TinyModel, "2", "The LORD is my shepherd; I shall not <extra_id_0>.", 16);

    /// <summary><c>--pack-2bit</c> keeps 2-bit experts bit-packed (the faster kernel) although their code is smaller.</summary>
    [Fact]
    public void PackTwoBitKeepsTwoBitExpertsPacked()
    {
        using var tmp = Paths.Temp();
        Run("compress", "--model", Paths.TinyModel, "--out", tmp.File("p"), "--calib-text", Paths.CalibrationText, "--samples", "8", "--bits", "2", "--pack-2bit", "--json");
        var inspect = Run("inspect", tmp.File("p"), "--json");
        Assert.Equal("2", (string?)Assert.Single(inspect["expert_types"]!.AsArray())!["type"]);
        Assert.InRange((double)inspect["expert_bits_per_param"]!, 2.0, 3.0);
    }

    [FixtureFact("mixtral-tiny-8")]
    public void CompressedThreeBitMixtralEqualsFakeQuant() =>
        AssertTwins(Paths.Fixture("mixtral-tiny-8")!, "3", "And God said", 32);
}
