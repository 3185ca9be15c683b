namespace Qmoe.Tests.Cli;

public class EvalGenerateCliTests
{
    [Fact]
    public void EvalPrintsSpecJson()
    {
        var r = CliProcess.Run("eval", "--model", Paths.TinyModel, "--data", Paths.EvalSets, "--split", "validation", "--limit", "8", "--json");
        Assert.Equal(0, r.ExitCode);
        var j = r.Json;
        Assert.Equal(new[] { "split", "examples", "tokens", "mean_ce", "tokens_per_s" }, j.Select(kv => kv.Key));
        Assert.Equal(8, (int)j["examples"]!);
        Assert.Equal(8 * 29, (int)j["tokens"]!);
        // The references' 8-example loss (eval_losses.json losses_8_examples.mean_token_ce).
        Assert.Equal(5.284358501434326, (double)j["mean_ce"]!, 4);
    }

    [Fact]
    public void GenerateMatchesReferenceAndPrintsSpecJson()
    {
        var r = CliProcess.Run("generate", "--model", Paths.TinyModel, "--prompt", "The LORD is my shepherd; I shall not <extra_id_0>.", "--json");
        Assert.Equal(0, r.ExitCode);
        var j = r.Json;
        Assert.Equal(new[] { "input_ids", "output_ids", "text", "tokens_per_s" }, j.Select(kv => kv.Key));
        Assert.Equal(new[] { 51, 38, 15, 45, 2178, 20, 14, 25, 28, 3999, 39, 5, 1 }, j["input_ids"]!.AsArray().Select(x => (int)x!));
        Assert.StartsWith("<extra_id_0>", (string)j["text"]!);
    }

    [Fact]
    public void CudaDeviceIsRefusedInOneLineWithoutOne()
    {
        if (Qmoe.Gpu.CudaDevice.Available()) return; // a machine with a GPU runs it instead
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", Paths.TinyModel, "--prompt", "hi", "--device", "cuda"), "--device cuda");
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", Paths.TinyModel, "--prompt", "hi", "--device", "tpu"), "--device 'tpu'");
    }

    [Fact]
    public void TruncatedWeightsAreRefused()
    {
        using var tmp = CopyTinyModel();
        var w = Path.Combine(tmp.Path, "model.safetensors");
        var bytes = File.ReadAllBytes(w);
        File.WriteAllBytes(w, bytes[..(bytes.Length - 1000)]);
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", tmp.Path, "--data", Paths.EvalSets, "--split", "validation"), "out of bounds");
    }

    [Fact]
    public void HeaderOffsetPastEndIsRefused()
    {
        using var tmp = CopyTinyModel();
        var w = Path.Combine(tmp.Path, "model.safetensors");
        var bytes = File.ReadAllBytes(w);
        BitConverter.GetBytes((long)bytes.Length).CopyTo(bytes, 0);
        File.WriteAllBytes(w, bytes);
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", tmp.Path, "--prompt", "hi"), "past the end");
    }

    [Fact]
    public void WrongDTypeIsRefused()
    {
        using var tmp = CopyTinyModel();
        var w = Path.Combine(tmp.Path, "model.safetensors");
        var bytes = File.ReadAllBytes(w);
        // Re-label shared.weight's F32 as I32 (same element size, so the header stays consistent).
        int n = (int)BitConverter.ToInt64(bytes, 0);
        var header = System.Text.Encoding.UTF8.GetString(bytes, 8, n);
        int at = header.IndexOf("\"shared.weight\"", StringComparison.Ordinal);
        int dt = header.IndexOf("\"F32\"", at, StringComparison.Ordinal);
        var patched = header[..dt] + "\"I32\"" + header[(dt + 5)..];
        System.Text.Encoding.UTF8.GetBytes(patched).CopyTo(bytes, 8);
        File.WriteAllBytes(w, bytes);
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", tmp.Path, "--prompt", "hi"), "shared.weight");
    }

    [Fact]
    public void MissingTokenizerIsRefused()
    {
        using var tmp = CopyTinyModel();
        File.Delete(Path.Combine(tmp.Path, "spiece.model"));
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", tmp.Path, "--prompt", "hi"), "spiece.model");
    }

    [Fact]
    public void OutOfVocabularyIdsAreRefused()
    {
        using var tmp = Paths.Temp();
        var data = tmp.File("bad.safetensors");
        var ids = new int[2 * 4];
        ids[5] = 4000;
        var labels = new int[2 * 2];
        Qmoe.IO.SafeTensorsWriter.WriteAll(data, new[]
        {
            ("s.input_ids", Qmoe.IO.DType.I32, new long[] { 2, 4 }, ids.SelectMany(BitConverter.GetBytes).ToArray()),
            ("s.labels", Qmoe.IO.DType.I32, new long[] { 2, 2 }, labels.SelectMany(BitConverter.GetBytes).ToArray()),
        });
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", Paths.TinyModel, "--data", data, "--split", "s"), "token id 4000");
    }

    [Fact]
    public void UnknownSplitAndMissingModelAreRefused()
    {
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", Paths.TinyModel, "--data", Paths.EvalSets, "--split", "nope"), "split 'nope'");
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", "/nonexistent/model", "--data", Paths.EvalSets, "--split", "validation"), "not found");
    }

    [Fact]
    public void UnsupportedConfigIsRefused()
    {
        using var tmp = CopyTinyModel();
        var cfg = Path.Combine(tmp.Path, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"feed_forward_proj\": \"relu\"", "\"feed_forward_proj\": \"gated-gelu\""));
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", tmp.Path, "--prompt", "hi"), "feed_forward_proj");
    }

    public static Paths.TempDir CopyTinyModel() => Paths.CopyOf(Paths.TinyModel);
}

public class DemoCliTests
{
    [Fact]
    public void DemoCompressesComparesAndWritesReportAndPlot()
    {
        using var tmp = Paths.Temp();
        // The real-width slice is covered by DemoReportTests (reduced); skipped here to keep CI time small.
        var r = CliProcess.Run("demo", "--out", tmp.Path, "--samples", "32", "--slice-experts", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = r.Json;
        var dense = j["dense"]!;
        var comp = j["compressed_model"]!;
        Assert.True((double)comp["expert_bits_per_param"]! < 2.5, $"expert bits {comp["expert_bits_per_param"]}");
        Assert.True((long)comp["bytes"]! < (long)dense["bytes"]!);
        foreach (var split in new[] { "validation_ce", "ood_man_ce" })
        {
            double d = (double)dense[split]!, c = (double)comp[split]!;
            Assert.InRange(c - d, -0.05, 0.05); // ternary GPTQ on the tiny model costs well under 0.05 nats
        }
        Assert.True(File.Exists(Path.Combine(tmp.Path, "demo-report.json")));
        var png = File.ReadAllBytes(Path.Combine(tmp.Path, "demo-report.png"));
        Assert.True(png.Length > 10_000 && png[1] == (byte)'P' && png[2] == (byte)'N' && png[3] == (byte)'G');
        Assert.Contains("compressed:", r.Stderr);
    }
}
