using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Models;
using Qmoe.Tests.Cli;

namespace Qmoe.Tests.Compression;

/// <summary>The whole compression pipeline on the embedded tiny model, through the real CLI.</summary>
public class PipelineTests
{
    private static string[] CompressArgs(string outDir, params string[] extra) =>
        ["compress", "--model", Paths.TinyModel, "--out", outDir, "--calib-text", Paths.CalibrationText, "--samples", "24", "--json", .. extra];

    /// <param name="block">the block after whose checkpoint the run is killed: 1, the encoder's sparse block; 3, the
    /// last block, whose checkpoint holds no hidden states (nothing reads them), so only the write stage remains.</param>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void KilledRunResumesToIdenticalBytes(int block)
    {
        using var tmp = Paths.Temp();
        string clean = tmp.File("clean"), killed = tmp.File("killed");
        var r = CliProcess.Run(CompressArgs(clean));
        Assert.True(r.ExitCode == 0, r.Stderr);
        // The single-file output of the streaming, shard-capable writer (issue 14) is byte-identical to what the
        // writer produced before it: SHA-256 of model.safetensors recorded with the code of commit db7ac4d
        // (switch-tiny-8, data/calibration.txt, --samples 24, defaults; same with --threads 1 and 2). Re-recorded after
        // merging main: the dictionary is now stored as qmoe.dictionary_costs (parameters, smaller than the trie).
        Assert.Equal("921a1070b94b8d6c4087b7bfa572d0c5b9c2808c75873d80b68cf2f0374ed073",
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(clean, "model.safetensors")))));

        // Killed (SIGKILL, no cleanup) right after the checkpoint of the block.
        var k = CliProcess.RunWithEnv(new Dictionary<string, string> { ["QMOE_TEST_KILL_AFTER_BLOCK"] = block.ToString() }, CompressArgs(killed));
        Assert.NotEqual(0, k.ExitCode);
        Assert.False(Directory.Exists(killed), "nothing may appear under the output name before the run completes");
        Assert.True(Directory.Exists(killed + ".qmoe-work"));

        // Without --resume the checkpoint is not silently discarded.
        CliProcess.AssertRefused(CliProcess.Run(CompressArgs(killed)), "--resume");

        var resumed = CliProcess.Run(CompressArgs(killed, "--resume"));
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains($"resuming at block {block + 1} of 4", resumed.Stderr);
        Assert.False(Directory.Exists(killed + ".qmoe-work"), "work directory removed after success");
        foreach (var f in new[] { "model.safetensors", "config.json" })
            Assert.True(File.ReadAllBytes(Path.Combine(clean, f)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(killed, f))), $"{f} differs after resume");
        Assert.True((bool)JsonNode.Parse(File.ReadAllText(Path.Combine(killed, "qmoe_report.json")))!["resumed"]!);
    }

    [Fact]
    public void ReportAndJsonHaveTheSpecFields()
    {
        using var tmp = Paths.Temp();
        string outDir = tmp.File("out");
        var r = CliProcess.Run(CompressArgs(outDir, "--premask"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = r.Json;
        // "allocation" (compress --target-bits) is null without a bit budget.
        Assert.Equal(new[] { "out", "seconds", "peak_rss_bytes", "expert_bits_per_param", "fallbacks", "allocation" }, j.Select(kv => kv.Key));
        Assert.Null(j["allocation"]);
        Assert.True((long)j["peak_rss_bytes"]! > 0);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "qmoe_report.json")))!.AsObject();
        Assert.True((bool)report["premask"]!);
        Assert.Equal(4, report["layers"]!.AsArray().Count); // 2 sparse layers × (wi, wo)
        foreach (var layer in report["layers"]!.AsArray())
        {
            double zero = (double)layer!["zero_fraction"]!, err = (double)layer["relative_error"]!;
            Assert.InRange(zero, 0.3, 0.99);
            Assert.InRange(err, 1e-6, 0.5);
        }
        foreach (var f in new[] { "config.json", "model.safetensors", "spiece.model", "qmoe_report.json" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Assert.DoesNotContain(Directory.GetFileSystemEntries(tmp.Path), p => p.Contains(".tmp-") || p.EndsWith(".qmoe-work"));
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal("qmoe", (string)cfg["quantization_config"]!["quant_method"]!);
    }

    [Fact]
    public void ABudgetBelowOneExpertIsRefusedUpFrontAndStaleTemporariesGo()
    {
        using var tmp = Paths.Temp();
        string outDir = tmp.File("out");
        string stale = outDir + ".tmp-999999999"; // a killed run's half-written output (no such process)
        Directory.CreateDirectory(stale);
        File.WriteAllText(Path.Combine(stale, "model.safetensors"), "half");
        var r = CliProcess.Run(CompressArgs(outDir, "--memory-budget", "0.001"));
        CliProcess.AssertRefused(r, "is below the working set");
        Assert.DoesNotContain("block 1/", r.Stderr); // refused before any block ran
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    [Fact]
    public void BadInputsAreRefusedAndLeaveNothing()
    {
        using var tmp = Paths.Temp();
        string outDir = tmp.File("out");
        CliProcess.AssertRefused(CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", outDir, "--calib-text", tmp.File("missing.txt")), "not found");
        var shortText = tmp.File("short.txt");
        File.WriteAllText(shortText, "Too short for a block.\n");
        CliProcess.AssertRefused(CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", outDir, "--calib-text", shortText), "short");
        CliProcess.AssertRefused(CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", outDir, "--calib", Paths.EvalSets, "--split", "validation", "--samples", "9999"), "9999 requested");
        CliProcess.AssertRefused(CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", outDir, "--calib-text", Paths.CalibrationText, "--bits", "5"), "unknown quantization type"); // --bits 2|3|4 are stored compressed (issue 16)

        using var dense = EvalGenerateCliTests.CopyTinyModel();
        var cfg = Path.Combine(dense.Path, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"num_sparse_encoder_layers\": 1", "\"num_sparse_encoder_layers\": 0")
            .Replace("\"num_sparse_decoder_layers\": 1", "\"num_sparse_decoder_layers\": 0"));
        CliProcess.AssertRefused(CliProcess.Run("compress", "--model", dense.Path, "--out", outDir, "--calib-text", Paths.CalibrationText), "no experts");

        CliProcess.AssertRefused(CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", Paths.TinyModel, "--calib-text", Paths.CalibrationText), "already exists");
        Assert.DoesNotContain(Directory.GetFileSystemEntries(tmp.Path), p => p.Contains("out"));
    }
}

public class ActivationSpillTests
{
    [Fact]
    public void SpilledRunWritesTheSameBytes()
    {
        using var tmp = Paths.Temp();
        string ram = tmp.File("ram"), spilled = tmp.File("spilled");
        string[] Args(string o, string budget) =>
            ["compress", "--model", Paths.TinyModel, "--out", o, "--calib-text", Paths.CalibrationText, "--samples", "16", "--memory-budget", budget];
        var a = CliProcess.Run(Args(ram, "4"));
        Assert.True(a.ExitCode == 0, a.Stderr);
        // The run's reserved working set plus 1 KB: every activation and expert buffer goes to spill files.
        var calib = CalibrationLoader.Load(Paths.TinyModel, Paths.CalibrationText, null, null, 16, premask: false);
        long ws;
        using (var model = ModelFamilies.For(ConfigReader.Load(Paths.TinyModel)).OpenForCompression(Paths.TinyModel))
            ws = WorkingSet.RuntimeBytes + WorkingSet.Of(model, WorkingSet.ChunkTokens(calib, new CompressionOptions())).Bytes;
        var b = CliProcess.Run(Args(spilled, ((ws + 1024) / (double)(1L << 30)).ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.True(b.ExitCode == 0, b.Stderr);
        Assert.True(File.ReadAllBytes(Path.Combine(ram, "model.safetensors")).AsSpan()
            .SequenceEqual(File.ReadAllBytes(Path.Combine(spilled, "model.safetensors"))));
        Assert.False(Directory.Exists(spilled + ".qmoe-work"));
    }

    [Fact]
    public void SpillFileLargerThanTheDiskIsRefused()
    {
        using var tmp = Paths.Temp();
        var budget = new Qmoe.Compression.MemoryBudget(0, tmp.File("spill"));
        // 2^50 bytes: fallocate fails at once (no space), before anything is mapped or written.
        var e = Assert.Throws<QmoeException>(() => new Qmoe.Compression.ActivationBuffer(1L << 40, 256, budget, "huge").Dispose());
        Assert.Contains("spill file", e.Message);
        Assert.Empty(Directory.GetFiles(tmp.File("spill")));
    }
}
