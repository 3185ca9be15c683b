using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.Models;
using Qmoe.Models.Layers;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Moe;
using Qmoe.Compression;
using Qmoe.Runtime;
using Qmoe.Tests.Cli;
using Qmoe.Tests.Models;

namespace Qmoe.Tests.Compression;

/// <summary>The compression pipeline on a decoder-only model: a tiny synthetic Mixtral, through the real CLI.</summary>
public class MixtralPipelineTests
{
    private static string Synth(Paths.TempDir tmp) =>
        SynthCheckpoint.Write(SynthTests.TinyMixtral, tmp.File("model"), Path.Combine(Paths.TinyModel, "spiece.model"), seed: 3).Dir;

    private static string[] CompressArgs(string model, string outDir, params string[] extra) =>
        ["compress", "--model", model, "--out", outDir, "--calib-text", Paths.CalibrationText, "--samples", "6", "--json", .. extra];

    [Fact]
    public void FakeQuantRunsAndEveryTokenFillsItsTopKLists()
    {
        using var tmp = Paths.Temp();
        string model = Synth(tmp), outDir = tmp.File("fq");
        var r = CliProcess.Run(CompressArgs(model, outDir, "--fake-quant", "--bits", "3"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "qmoe_report.json")))!.AsObject();
        var layers = report["layers"]!.AsArray();
        Assert.Equal(2 * 3, layers.Count); // 2 layers × (w1, w3, w2)
        foreach (var l in layers)
        {
            // A token routed to k = 2 experts is in both experts' list buffers: 6 blocks × 141 tokens × 2.
            long listed = l!["tokens_per_expert"]!.AsArray().Sum(t => (long)t!);
            Assert.Equal(6 * 141 * 2, listed);
        }
        Assert.Equal(new[] { "model.layers.0.block_sparse_moe.experts.w1", "model.layers.0.block_sparse_moe.experts.w3",
            "model.layers.0.block_sparse_moe.experts.w2" }, layers.Take(3).Select(l => (string)l!["name"]!));

        var e = CliProcess.Run("eval", "--model", outDir, "--data", Paths.EvalSets, "--split", "validation", "--limit", "2", "--json");
        Assert.True(e.ExitCode == 0, e.Stderr);
        Assert.True(double.IsFinite((double)e.Json["mean_ce"]!));

        // The dequantized experts are on the 3-bit grid: at most 8 distinct values per row.
        using var store = Qmoe.IO.TensorStore.Open(outDir);
        var w = store.ReadFloat32("model.layers.1.block_sparse_moe.experts.2.w2.weight", 32, 48);
        for (int row = 0; row < 32; row++) Assert.True(w.Skip(row * 48).Take(48).Distinct().Count() <= 8);
    }

    [Fact]
    public void TernaryCompressedOutputIsWrittenAndResumesToIdenticalBytes()
    {
        using var tmp = Paths.Temp();
        string model = Synth(tmp), clean = tmp.File("clean"), killed = tmp.File("killed");
        var r = CliProcess.Run(CompressArgs(model, clean));
        Assert.True(r.ExitCode == 0, r.Stderr);
        using (var c = CompressedModel.Open(clean))
        {
            // Every expert matrix is in the container: 2 layers × 4 experts × (w1, w3 [48, 32], w2 [32, 48]).
            var stats = ModelStatistics.Compute(c);
            Assert.Equal(2 * 4 * 3 * 48 * 32L, stats.ExpertParameters);
            Assert.Equal(6, stats.Groups.Count);
            // Code bits alone (16-bit codes); the tiny matrices' per-row overheads dominate the total here.
            Assert.InRange(stats.CodeBitsPerParam, 0.1, 2.0);
        }

        var k = CliProcess.RunWithEnv(new Dictionary<string, string> { [CompressionWorkDir.CrashAfterBlockVariable] = "0" }, CompressArgs(model, killed));
        Assert.NotEqual(0, k.ExitCode);
        Assert.False(Directory.Exists(killed));
        var resumed = CliProcess.Run(CompressArgs(model, killed, "--resume"));
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Contains("resuming at block 1", resumed.Stderr);
        foreach (var f in Directory.GetFiles(clean).Select(Path.GetFileName).Where(f => f != "qmoe_report.json"))
            Assert.True(File.ReadAllBytes(Path.Combine(clean, f!)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(killed, f!))), $"{f} differs after resume");
    }

    [Fact]
    public void TheCheckpointsTokenizerFilesTravelWithTheOutput()
    {
        // A checkpoint that ships its SentencePiece model as tokenizer.model (as Mistral / Mixtral repositories do) and its
        // chat template as chat_template.jinja (as transformers saves it): the compressed directory is usable alone.
        using var tmp = Paths.Temp();
        string model = Synth(tmp), outDir = tmp.File("c");
        File.Move(Path.Combine(model, "spiece.model"), Path.Combine(model, "tokenizer.model"));
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}");
        var r = CliProcess.Run(CompressArgs(model, outDir));
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var f in new[] { "tokenizer.model", "chat_template.jinja" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        const string text = "And God said, Let there be light";
        Assert.Equal(Qmoe.Text.TokenizerLoader.ForDirectory(model).Encode(text, addSpecialTokens: false),
            Qmoe.Text.TokenizerLoader.ForDirectory(outDir).Encode(text, addSpecialTokens: false));
        var chat = Qmoe.Text.Templates.ChatTemplate.Load(outDir)!;
        Assert.Equal("[user] Hi\n", chat.Render([new Qmoe.Text.ChatMessage("user", "Hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void CompressedModelRunsLikeItsFakeQuantTwin()
    {
        using var tmp = Paths.Temp();
        string model = Synth(tmp), compressed = tmp.File("c"), fake = tmp.File("f");
        Assert.True(CliProcess.Run(CompressArgs(model, compressed)).ExitCode == 0);
        Assert.True(CliProcess.Run(CompressArgs(model, fake, "--fake-quant")).ExitCode == 0);
        using var c = ModelLoader.Open(compressed);
        using var f = ModelLoader.Open(fake);
        using var d = ModelLoader.Open(model);
        double Ce(IRunnableModel m) => m.Evaluate(EvalSet.Load(Paths.EvalSets, "validation", m.VocabSize, limit: 4, causal: true)).MeanCe;
        double cc = Ce(c), fc = Ce(f);
        Assert.True(Math.Abs(cc - fc) <= 1e-4, $"compressed {cc} vs fake-quant {fc}");
        Assert.NotEqual(Ce(d), fc); // the experts really were replaced
        var prompt = c.Tokenizer.Encode("And God said, Let there be", addSpecialTokens: false);
        Assert.Equal(f.Generate(prompt, 8, stopAtEos: false), c.Generate(prompt, 8, stopAtEos: false));
    }

    [Fact]
    public void CalibrationFromTokenFileUsesRawBlocksAndPremaskIsRefused()
    {
        using var tmp = Paths.Temp();
        string model = Synth(tmp);
        var data = CalibrationLoader.Load(model, null, Paths.EvalSets, "validation", 3, premask: false);
        Assert.Empty(data.EncoderInput);
        Assert.Equal(3, data.Samples);
        Assert.All(data.DecoderInput, b => Assert.Equal(141, b.Length));
        CliProcess.AssertRefused(CliProcess.Run(CompressArgs(model, tmp.File("pm"), "--premask")), "--premask");
    }

    [Fact]
    public void StageInputIsTheSwiGluHiddenOfTheQuantizedMatrices()
    {
        var rng = new Random(5);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        int d = 6, f = 10, n = 3;
        var w1 = new Matrix(R(f * d), f, d); var w3 = new Matrix(R(f * d), f, d); var w2 = new Matrix(R(d * f), d, f);
        var x = R(n * d);
        var layout = new SwiGluExpertLayout(d, f, SwiGluExpertLayout.MixtralNames);
        var hidden = layout.StageInput(1, x, n, kind => kind == "w1" ? w1 : w3);
        var y = new float[n * d];
        layout.CreateExperts(1, (_, kind) => kind switch { "w1" => w1, "w3" => w3, _ => w2 }).Forward(0, x, n, y);
        Assert.Equal(Linear.Forward(hidden, n, w2), y);
        for (int t = 0; t < n; t++)
            for (int j = 0; j < f; j++)
            {
                double g = 0, u = 0;
                for (int c = 0; c < d; c++) { g += w1.F32[j * d + c] * x[t * d + c]; u += w3.F32[j * d + c] * x[t * d + c]; }
                Assert.Equal(g / (1 + Math.Exp(-g)) * u, hidden[t * f + j], 1e-5);
            }
    }
}
