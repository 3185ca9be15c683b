using System.Text.Json;
using System.Text.Json.Nodes;
using Qmoe.Tests.Text;

namespace Qmoe.Tests.Cli;

/// <summary><c>qmoe tokenize</c> through the real CLI on the shared tokenizer fixtures and on checkpoint directories.</summary>
public class TokenizeCliTests
{
    private static string Tok(params string[] parts) => Paths.Fixture(["tokenizers", .. parts])!;

    /// <summary>
    /// Runs tokenize --jsonl on the public corpus and checks every line: ids; ids_special with --special where the
    /// expected file has them; and, through --decode, the decodings. One CLI process per pass, not per line.
    /// </summary>
    private static void AssertCorpus(string modelDir, string expectedFile, int[]? configPrefix = null)
    {
        var expected = SentencePieceFixtureTests.Expected(expectedFile);
        var expectedSpecial = File.ReadLines(expectedFile)
            .Select(l => JsonNode.Parse(l)!["ids_special"]?.AsArray().Select(x => (int)x!).ToArray())
            .Select(ids => ids == null ? null : (int[])[.. configPrefix ?? [], .. ids]).ToList();
        AssertIds([], expected.Select(e => e.Ids).ToList());
        if (expectedSpecial.All(e => e != null)) AssertIds(["--special"], expectedSpecial!);

        using var idsFile = Paths.Temp();
        string path = idsFile.File("ids.jsonl");
        File.WriteAllLines(path, expected.Select(e => JsonSerializer.Serialize(e.Ids)));
        var r = CliProcess.Run("tokenize", "--model", modelDir, "--jsonl", path, "--decode", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var texts = r.Json["texts"]!.AsArray().Select(t => (string)t!).ToList();
        Assert.Equal(expected.Select(e => e.Decoded), texts);

        void AssertIds(string[] extra, List<int[]> want)
        {
            var run = CliProcess.Run(["tokenize", "--model", modelDir, "--jsonl", Tok("corpus.jsonl"), .. extra, "--json"]);
            Assert.True(run.ExitCode == 0, run.Stderr);
            var ids = run.Json["ids"]!.AsArray();
            Assert.Equal(want.Count, ids.Count);
            var firstMiss = Enumerable.Range(0, want.Count).FirstOrDefault(i => !want[i].SequenceEqual(ids[i]!.AsArray().Select(x => (int)x!)), -1);
            Assert.True(firstMiss < 0, $"{string.Join(' ', extra)}: line {firstMiss + 1} differs: {ids[Math.Max(firstMiss, 0)]!.ToJsonString()}");
        }
    }

    /// <summary>
    /// Each tokenizer.json fixture directory (tokenizer.json first where a .model sits beside it, as transformers
    /// does). expected.jsonl's ids_special are the tokenizers library's; deepseek-coder's tokenizer_config.json
    /// (<c>add_bos_token: true</c>, LlamaTokenizerFast) makes transformers, and us, prepend its bos 32013 as well
    /// (fixtures' tokenizers/README.md).
    /// </summary>
    [FixtureTheory("tokenizers", "qwen2", "expected.jsonl")]
    [InlineData("qwen2", -1)]
    [InlineData("olmoe", -1)]
    [InlineData("deepseek-coder", 32013)]
    [InlineData("mistral-v03", -1)]
    public void Tokenizer_json_corpus_matches(string fixture, int configBos) =>
        AssertCorpus(Tok(fixture), Tok(fixture, "expected.jsonl"), configBos >= 0 ? [configBos] : null);

    [FixtureFact("tokenizers", "mistral-v01", "expected.jsonl")]
    public void Mistral_v01_corpus_matches() => AssertCorpus(Tok("mistral-v01"), Tok("mistral-v01", "expected.jsonl"));

    [FixtureFact("tokenizers", "t5-legal", "expected.jsonl")]
    public void T5_legal_corpus_matches() => AssertCorpus(Tok("t5-legal"), Tok("t5-legal", "expected.jsonl"));

    [FixtureFact("tokenizers", "mistral-v03", "expected.spm.jsonl")]
    public void Mistral_v03_model_alone_matches_sentencepiece()
    {
        using var dir = Paths.Temp();
        File.Copy(Tok("mistral-v03", "tokenizer.model"), dir.File("tokenizer.model"));
        AssertCorpus(dir.Path, Tok("mistral-v03", "expected.spm.jsonl"));
    }

    /// <summary>A checkpoint directory (config.json + one tokenizer file) prints the reference ids.</summary>
    [FixtureTheory("tokenizers", "mistral-v01", "expected.jsonl")]
    [InlineData("mistral-v01", "tokenizer.model", "expected.jsonl", "mixtral", 32128)]
    [InlineData("t5-legal", "spiece.model", "expected.jsonl", "t5", 32128)]
    [InlineData("qwen2", "tokenizer.json", "expected.jsonl", "qwen3_moe", 151936)]
    public void Checkpoint_with_one_tokenizer_file_loads(string fixture, string file, string expectedFile, string modelType, int vocabSize)
    {
        using var dir = Paths.Temp();
        File.Copy(Tok(fixture, file), dir.File(file));
        File.WriteAllText(dir.File("config.json"), $$"""{"model_type": "{{modelType}}", "vocab_size": {{vocabSize}}}""");
        var expected = SentencePieceFixtureTests.Expected(Tok(fixture, expectedFile)).Take(40).ToList();
        using var inputs = Paths.Temp();
        File.WriteAllLines(inputs.File("in.jsonl"), expected.Select(e => JsonSerializer.Serialize(e.Text)));
        var r = CliProcess.Run("tokenize", "--model", dir.Path, "--jsonl", inputs.File("in.jsonl"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal(expected.Select(e => string.Join(' ', e.Ids)), r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [FixtureFact("tokenizers", "mistral-v03", "tokenizer.model")]
    public void Special_tokens_follow_the_tokenizer_config()
    {
        using var dir = Paths.Temp();
        File.Copy(Tok("mistral-v03", "tokenizer.model"), dir.File("tokenizer.model"));
        int[] Ids(params string[] extra)
        {
            var r = CliProcess.Run(["tokenize", "--model", dir.Path, "--text", "Hello", "--json", .. extra]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            return r.Json["ids"]![0]!.AsArray().Select(x => (int)x!).ToArray();
        }
        int[] plain = Ids();
        Assert.Equal([1, .. plain], Ids("--special"));     // Llama convention for tokenizer.model: bos
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"add_bos_token": false, "add_eos_token": true, "eos_token": {"content": "</s>"}}""");
        Assert.Equal([.. plain, 2], Ids("--special"));
    }

    [FixtureFact("tokenizers", "mistral-v01", "tokenizer.model")]
    public void Vocabulary_larger_than_the_embedding_is_refused_naming_both()
    {
        using var dir = Paths.Temp();
        File.Copy(Tok("mistral-v01", "tokenizer.model"), dir.File("tokenizer.model"));
        File.WriteAllText(dir.File("config.json"), """{"model_type": "mixtral", "vocab_size": 30000}""");
        var r = CliProcess.Run("tokenize", "--model", dir.Path, "--text", "hi");
        CliProcess.AssertRefused(r, "32000");
        Assert.Contains("30000", r.Stderr);
    }

    [Fact]
    public void Switch_sentinels_and_their_limit()
    {
        var r = CliProcess.Run("tokenize", "--model", Paths.TinyModel, "--text", "not <extra_id_0>.", "--special");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("28 3999 39 5 1", r.Stdout.Trim());
        CliProcess.AssertRefused(CliProcess.Run("tokenize", "--model", Paths.TinyModel, "--text", "a <extra_id_100>"), "<extra_id_100>: this tokenizer has 100 sentinels");
        r = CliProcess.Run("tokenize", "--model", Paths.TinyModel, "--text", "28 3999 39 5 1", "--decode");
        Assert.Equal("not <extra_id_0> .", r.Stdout.Trim());
    }

    [Fact]
    public void Bad_input_is_refused_in_one_line()
    {
        using var dir = Paths.Temp();
        File.Copy(Path.Combine(Paths.TinyModel, "spiece.model"), dir.File("tokenizer.model"));
        var bytes = File.ReadAllBytes(dir.File("tokenizer.model"));
        File.WriteAllBytes(dir.File("tokenizer.model"), bytes[..(bytes.Length / 2)]);
        CliProcess.AssertRefused(CliProcess.Run("tokenize", "--model", dir.Path, "--text", "x"), dir.File("tokenizer.model"));
        CliProcess.AssertRefused(CliProcess.Run("tokenize", "--model", Paths.TinyModel, "--text", "x", "--file", "y"), "exactly one of");
        CliProcess.AssertRefused(CliProcess.Run("tokenize", "--model", Paths.TinyModel, "--text", "1 x", "--decode"), "'x' is not a token id");
        CliProcess.AssertRefused(CliProcess.Run("tokenize", "--model", Paths.TinyModel, "--text", "4000", "--decode"), "outside the vocabulary");
        CliProcess.AssertRefused(CliProcess.Run("tokenize", "--model", dir.File("nope"), "--text", "x"), "not found");
    }
}
