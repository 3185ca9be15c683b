using System.Text.Json;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Tests.Cli;

/// <summary><c>eval --text</c>: the raw-text metric of docs/SPEC.md through the real CLI, against the same metric computed here.</summary>
public class EvalTextCliTests
{
    [FixtureFact("mixtral-tiny-8", "spiece.model")]
    public void Decoder_only_text_eval_equals_the_metric_on_spiece_ids()
    {
        string model = Paths.Fixture("mixtral-tiny-8")!, text = Paths.Fixture("data", "text", "validation.txt")!;
        var r = CliProcess.Run("eval", "--model", model, "--text", text, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = r.Json;
        Assert.Equal(new[] { "split", "examples", "tokens", "mean_ce", "tokens_per_s" }, j.Select(kv => kv.Key));

        // The same metric from the spiece.model ids: lines joined by "\n", no special tokens (no bos in this
        // vocabulary), 128-token blocks, at most 64, CE of tokens 1..127 of each block.
        var sp = SentencePieceTokenizer.Load(Path.Combine(model, "spiece.model"));
        int[] ids = sp.Encode(string.Join("\n", File.ReadAllLines(text)), addSpecialTokens: false);
        int blocks = Math.Min(64, ids.Length / 128);
        Assert.True(blocks > 0);
        var set = EvalSet.FromRawBlocks("validation", Enumerable.Range(0, blocks).Select(b => ids[(b * 128)..((b + 1) * 128)]).ToArray());
        using var m = ModelLoader.Open(model);
        var expected = m.Evaluate(set);
        Assert.Equal("validation", (string)j["split"]!);
        Assert.Equal(blocks, (int)j["examples"]!);
        Assert.Equal(blocks * 127L, (long)j["tokens"]!);
        Assert.Equal(expected.MeanCe, (double)j["mean_ce"]!, 9);

        // --max-blocks 0: every whole block of the file (more than the default 64 here).
        var all = CliProcess.Run("eval", "--model", model, "--text", text, "--max-blocks", "0", "--json");
        Assert.True(all.ExitCode == 0, all.Stderr);
        Assert.True(ids.Length / 128 > 64);
        Assert.Equal(ids.Length / 128, (int)all.Json["examples"]!);
        Assert.Equal(ids.Length / 128 * 127L, (long)all.Json["tokens"]!);
    }

    /// <summary>
    /// The tokenizer.json decoder-only fixtures: <c>eval --text</c> (defaults: 128-token blocks, at most 64) gives
    /// eval_losses.json's mean CE within 1e-4 on both text splits, the same block and predicted-token counts, and the
    /// tokenizer gives the reference's token count for the whole split (bos included where the config adds one).
    /// </summary>
    [FixtureTheory("references", "qwen3-moe-tiny", "eval_losses.json")]
    [InlineData("qwen3-moe-tiny", "validation")]
    [InlineData("qwen3-moe-tiny", "ood_man")]
    [InlineData("deepseek-v3-tiny", "validation")]
    [InlineData("deepseek-v3-tiny", "ood_man")]
    public void Decoder_only_text_eval_reproduces_the_reference(string model, string split)
    {
        string dir = Paths.Fixture(model)!, text = Paths.Fixture("data", "text", split + ".txt")!;
        using var doc = JsonDocument.Parse(File.ReadAllText(Paths.Fixture("references", model, "eval_losses.json")!));
        var reference = doc.RootElement.GetProperty("splits").GetProperty(split);

        var r = CliProcess.Run("eval", "--model", dir, "--text", text, "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(split, (string)r.Json["split"]!);
        Assert.Equal(reference.GetProperty("blocks").GetInt32(), (int)r.Json["examples"]!);
        Assert.Equal(reference.GetProperty("predicted_tokens").GetInt64(), (long)r.Json["tokens"]!);
        double ce = (double)r.Json["mean_ce"]!, expected = reference.GetProperty("mean_ce").GetDouble();
        Assert.True(Math.Abs(ce - expected) <= 1e-4, $"{model} {split}: mean CE {ce} vs reference {expected}");

        using var m = ModelLoader.Open(dir);
        Assert.Equal(reference.GetProperty("tokens_in_split").GetInt32(), TextEval.CausalIds(m.Tokenizer, text).Length);
    }

    [Fact]
    public void Switch_text_eval_uses_span_corruption_with_the_fixed_seed()
    {
        var r = CliProcess.Run("eval", "--model", Paths.TinyModel, "--text", Paths.CalibrationText, "--max-blocks", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var tok = T5Tokenizer.Load(Paths.TinyModel, 100);
        var cal = CalibrationSet.FromText(Paths.CalibrationText, tok, 3);
        int[][] Rows(int[] flat, int n) => Enumerable.Range(0, flat.Length / n).Select(i => flat[(i * n)..((i + 1) * n)]).ToArray();
        using var m = ModelLoader.Open(Paths.TinyModel);
        var expected = m.Evaluate(EvalSet.FromSpanCorruption("calibration", Rows(cal.InputIds, cal.InputLength), Rows(cal.Labels, cal.LabelLength)));
        Assert.Equal(3, (int)r.Json["examples"]!);
        Assert.Equal(expected.MeanCe, (double)r.Json["mean_ce"]!, 9);
    }

    [Fact]
    public void Bad_text_eval_arguments_are_refused()
    {
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", Paths.TinyModel), "exactly one of");
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", Paths.TinyModel, "--text", "missing.txt"), "missing.txt");
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", Paths.TinyModel, "--text", Paths.CalibrationText, "--max-blocks", "-1"), "--max-blocks -1");
        using var dir = Paths.Temp();
        File.WriteAllText(dir.File("short.txt"), "a\n");
        CliProcess.AssertRefused(CliProcess.Run("eval", "--model", Paths.TinyModel, "--text", dir.File("short.txt")), "too short");
    }
}
