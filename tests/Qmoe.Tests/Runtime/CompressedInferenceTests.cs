using System.Text.Json.Nodes;
using Qmoe.Tests.Cli;

namespace Qmoe.Tests.Runtime;

/// <summary>
/// The compressed model runs straight from its codes: same CE and generations as the dense fake-quant checkpoint
/// holding the same quantized weights; corrupt models are refused naming the tensor or field.
/// </summary>
public class CompressedInferenceTests : IClassFixture<CompressedInferenceTests.Models>
{
    /// <summary>Compressed and fake-quant outputs of one ternary GPTQ run on the tiny model (built once per class).</summary>
    public sealed class Models : IDisposable
    {
        public Paths.TempDir Tmp { get; } = Paths.Temp();
        public string Compressed => Tmp.File("compressed");
        public string FakeQuant => Tmp.File("fake-quant");

        public Models()
        {
            foreach (var (dir, extra) in new[] { (Compressed, Array.Empty<string>()), (FakeQuant, new[] { "--fake-quant" }) })
            {
                var r = CliProcess.Run(["compress", "--model", Paths.TinyModel, "--out", dir, "--calib-text", Paths.CalibrationText, "--samples", "32", .. extra]);
                Assert.True(r.ExitCode == 0, r.Stderr);
            }
        }

        public void Dispose() => Tmp.Dispose();
    }

    private readonly Models _m;
    public CompressedInferenceTests(Models m) { _m = m; }

    /// <summary>A batched decode step of the compressed model gives every sequence the logits it gets stepped alone,
    /// bitwise (on AVX2/AVX-512 the kernel's batch path sums in another order unless the step asks for invariance).</summary>
    [Fact]
    public void CompressedBatchedStepEqualsSingleSteps() => Server.BatchDecodingTests.StepRowsEqualSingleSteps(_m.Compressed, 8);

    [Theory]
    [InlineData("validation")]
    [InlineData("ood_man")]
    public void CompressedEvalEqualsFakeQuant(string split)
    {
        double Ce(string model)
        {
            var r = CliProcess.Run("eval", "--model", model, "--data", Paths.EvalSets, "--split", split, "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            return (double)r.Json["mean_ce"]!;
        }
        double c = Ce(_m.Compressed), f = Ce(_m.FakeQuant), dense = Ce(Paths.TinyModel);
        Assert.True(Math.Abs(c - f) <= 1e-4, $"compressed {c} vs fake-quant {f}");
        Assert.NotEqual(dense, f); // the experts really were replaced
    }

    [Fact]
    public void GreedyGenerationsAreIdentical()
    {
        foreach (var prompt in new[] { "The LORD is my shepherd; I shall not <extra_id_0>.", "In the beginning <extra_id_0> the heaven and the earth." })
        {
            JsonArray Ids(string model)
            {
                var r = CliProcess.Run("generate", "--model", model, "--prompt", prompt, "--json");
                Assert.True(r.ExitCode == 0, r.Stderr);
                return r.Json["output_ids"]!.AsArray();
            }
            Assert.Equal(Ids(_m.FakeQuant).ToJsonString(), Ids(_m.Compressed).ToJsonString());
        }
    }

    [Theory]
    [InlineData("DOTNET_EnableAVX512F,DOTNET_EnableAVX512", "avx2")] // .NET 10 reads the second; earlier runtimes the first
    [InlineData("DOTNET_EnableAVX2", "vector128")]
    [InlineData("DOTNET_EnableHWIntrinsic", "scalar")]
    public void NarrowedInstructionSetsGenerateTheSameIds(string switchedOff, string widestExpected)
    {
        // A child process with intrinsics switched off runs a narrower kernel path; its ids equal the fake-quant twin's.
        const string Prompt = "The LORD is my shepherd; I shall not <extra_id_0>.";
        var fake = CliProcess.Run("generate", "--model", _m.FakeQuant, "--prompt", Prompt, "--json");
        Assert.True(fake.ExitCode == 0, fake.Stderr);
        var r = CliProcess.RunWithEnv(switchedOff.Split(',').ToDictionary(v => v, _ => "0"), "generate", "--model", _m.Compressed, "--prompt", Prompt, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        string ran = System.Text.RegularExpressions.Regex.Match(r.Stderr, @"CPU kernels: (\w+)").Groups[1].Value;
        var isa = Enum.GetValues<Qmoe.Kernels.KernelIsa>().Single(i => Qmoe.Kernels.KernelIsas.Name(i) == ran);
        Assert.True(isa <= Enum.GetValues<Qmoe.Kernels.KernelIsa>().Single(i => Qmoe.Kernels.KernelIsas.Name(i) == widestExpected), $"{switchedOff}=0 ran {isa}");
        Assert.Equal(fake.Json["output_ids"]!.ToJsonString(), r.Json["output_ids"]!.ToJsonString());
    }

    [Fact]
    public void TwoThreadsGeneratingOnOneModelGiveTheSameIdsAsOneAtATime()
    {
        // One loaded compressed model (one kernel, one worker pool) shared by two generating threads: the kernels
        // keep no per-call state, so each thread's ids equal those of a run on its own.
        using var model = Qmoe.Runtime.ModelLoader.Open(_m.Compressed);
        string[] prompts = ["The LORD is my shepherd; I shall not <extra_id_0>.", "In the beginning <extra_id_0> the heaven and the earth."];
        var inputs = prompts.Select(p => model.Tokenizer.Encode(p, addSpecialTokens: true)).ToArray();
        var alone = inputs.Select(ids => model.Generate(ids, 12, stopAtEos: false)).ToArray();
        var together = new int[2][][];
        using var start = new Barrier(2);
        var errors = new Exception?[2];
        var threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                together[t] = Enumerable.Range(0, 4).Select(_ => model.Generate(inputs[t], 12, stopAtEos: false)).ToArray();
            }
            catch (Exception e) { errors[t] = e; }
        })).ToArray();
        foreach (var th in threads) th.Start();
        foreach (var th in threads) th.Join();
        Assert.All(errors, Assert.Null);
        for (int t = 0; t < 2; t++)
            foreach (var ids in together[t]) Assert.Equal(alone[t], ids);
    }

    private Paths.TempDir CopyCompressed() => Paths.CopyOf(_m.Compressed);

    [Fact]
    public void FlippedCodeByteIsRefusedNamingTheTensor()
    {
        using var tmp = CopyCompressed();
        var path = Path.Combine(tmp.Path, "model.safetensors");
        using (var f = Qmoe.IO.SafeTensorsFile.Open(path))
        {
            var t = f.Info("encoder.block.1.layer.1.mlp.experts.wi.codes");
            var bytes = File.ReadAllBytes(path);
            f.Dispose();
            bytes[t.Offset + t.ByteLength / 2] ^= 0x10;
            File.WriteAllBytes(path, bytes);
        }
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", tmp.Path, "--prompt", "hi"), "experts.wi.codes");
        CliProcess.AssertRefused(CliProcess.Run("verify", tmp.Path), "experts.wi.codes");
    }

    [Fact]
    public void TruncatedFileIsRefused()
    {
        using var tmp = CopyCompressed();
        var path = Path.Combine(tmp.Path, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length - 4096)]);
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", tmp.Path, "--data", Paths.EvalSets, "--split", "validation"), "tensor '");
    }

    [Fact]
    public void UnknownFormatVersionIsRefused()
    {
        using var tmp = CopyCompressed();
        var cfgPath = Path.Combine(tmp.Path, "config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!;
        cfg["quantization_config"]!["format_version"] = 99;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", tmp.Path, "--prompt", "hi"), "format_version");
    }
}

/// <summary>The decoder-only family through the same codec and kernels: compressed Mixtral equals its fake-quant twin.</summary>
public class CompressedMixtralTests
{
    [FixtureFact("mixtral-tiny-8")]
    public void CompressedMixtralEqualsFakeQuant()
    {
        string model = Paths.Fixture("mixtral-tiny-8")!;
        using var tmp = Paths.Temp();
        foreach (var (dir, extra) in new[] { ("c", Array.Empty<string>()), ("f", new[] { "--fake-quant" }) })
        {
            var r = CliProcess.Run(["compress", "--model", model, "--out", tmp.File(dir), "--calib-text", Paths.CalibrationText, "--samples", "32", .. extra]);
            Assert.True(r.ExitCode == 0, r.Stderr);
        }
        JsonObject Run(params string[] args)
        {
            var r = CliProcess.Run(args);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return r.Json;
        }
        double Ce(string dir) => (double)Run("eval", "--model", dir, "--data", Paths.EvalSets, "--split", "validation", "--limit", "32", "--json")["mean_ce"]!;
        string Gen(string dir) => Run("generate", "--model", dir, "--prompt", "And God said", "--json")["output_ids"]!.ToJsonString();
        Assert.True(Math.Abs(Ce(tmp.File("c")) - Ce(tmp.File("f"))) <= 1e-4);
        Assert.Equal(Gen(tmp.File("f")), Gen(tmp.File("c")));
        Server.BatchDecodingTests.StepRowsEqualSingleSteps(tmp.File("c"), 8);
    }
}
