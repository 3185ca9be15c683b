using System.Collections.Concurrent;
using System.Text.Json;
using Qmoe.IO;
using Qmoe.Text.HuggingFace;

namespace Qmoe.Tests.Text.HuggingFace;

/// <summary>
/// Every line of the shared tokenizer fixtures' expected.jsonl (Hugging Face tokenizers 0.23.2's output on the public
/// corpus) must match exactly: ids, ids with special tokens, decoded text. Also the tiny decoder-only models'
/// reference prompts and eval blocks, which were tokenized with their tokenizer.json.
/// </summary>
public class HfTokenizerFixtureTests
{
    private static readonly ConcurrentDictionary<string, HfTokenizer> Loaded = new();

    /// <summary>Each tokenizer loads once per test run.</summary>
    private static HfTokenizer Tokenizer(params string[] parts) =>
        Loaded.GetOrAdd(string.Join('/', parts), _ => HfTokenizer.Load(Paths.Fixture(parts)!));

    private static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static void AssertExpectedLines(string dir)
    {
        var tok = Tokenizer("tokenizers", dir, "tokenizer.json");
        int lines = 0, ids = 0, special = 0, decoded = 0;
        var firstMiss = new List<string>();
        foreach (var line in File.ReadLines(Paths.Fixture("tokenizers", dir, "expected.jsonl")!))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            string text = r.GetProperty("text").GetString()!;
            var expectedIds = Ints(r.GetProperty("ids"));
            lines++;
            bool a = tok.Encode(text, false).AsSpan().SequenceEqual(expectedIds);
            bool b = tok.Encode(text, true).AsSpan().SequenceEqual(Ints(r.GetProperty("ids_special")));
            bool c = tok.Decode(expectedIds, skipSpecialTokens: true) == r.GetProperty("decoded").GetString();
            ids += a ? 1 : 0;
            special += b ? 1 : 0;
            decoded += c ? 1 : 0;
            if (!(a && b && c) && firstMiss.Count < 3) firstMiss.Add($"line {lines} {JsonSerializer.Serialize(text)} ids={a} special={b} decoded={c}");
        }
        Assert.True(lines > 1000, $"{dir}: only {lines} lines");
        Assert.True(ids == lines && special == lines && decoded == lines,
            $"{dir}: ids {ids}/{lines}, ids_special {special}/{lines}, decoded {decoded}/{lines}; {string.Join("; ", firstMiss)}");
    }

    [FixtureFact("tokenizers", "qwen2", "expected.jsonl")]
    public void Qwen2_matches_every_line() => AssertExpectedLines("qwen2");

    [FixtureFact("tokenizers", "olmoe", "expected.jsonl")]
    public void Olmoe_matches_every_line() => AssertExpectedLines("olmoe");

    [FixtureFact("tokenizers", "deepseek-coder", "expected.jsonl")]
    public void Deepseek_coder_matches_every_line() => AssertExpectedLines("deepseek-coder");

    [FixtureFact("tokenizers", "mistral-v03", "expected.jsonl")]
    public void Mistral_v03_matches_every_line() => AssertExpectedLines("mistral-v03");

    [FixtureFact("tokenizers", "mistral-v03", "tokenizer.json")]
    public void Mistral_v03_special_ids_come_from_the_file()
    {
        var tok = Tokenizer("tokenizers", "mistral-v03", "tokenizer.json");
        Assert.Equal("hf-bpe", tok.Kind);
        Assert.Equal(32768, tok.VocabSize);
        Assert.Equal(new SpecialTokensView(1, [], null, 0), new SpecialTokensView(tok.Special));
        Assert.Equal(1, tok.TokenToId("<s>"));
        Assert.Equal("</s>", tok.IdToToken(2));
        Assert.True(tok.IsSpecial(2));
        Assert.Equal(771, tok.AddedTokens.Count);
    }

    [FixtureFact("tokenizers", "qwen2", "tokenizer.json")]
    public void Qwen2_has_no_template_special_tokens()
    {
        var tok = Tokenizer("tokenizers", "qwen2", "tokenizer.json");
        Assert.Equal(151646, tok.VocabSize);
        Assert.Equal(new SpecialTokensView(null, [], null, null), new SpecialTokensView(tok.Special));
        Assert.Equal(151644, tok.TokenToId("<|im_start|>"));
        // Added tokens written in the text are matched even without special tokens, and decoding drops them.
        Assert.Equal([151644, 872], tok.Encode("<|im_start|>user", false));
        Assert.Equal("user", tok.Decode([151644, 872]));
        Assert.Equal("<|im_start|>user", tok.Decode([151644, 872], skipSpecialTokens: false));
    }

    private sealed record SpecialTokensView(int? Bos, int[] Eos, int? Pad, int? Unk)
    {
        public SpecialTokensView(Qmoe.Text.SpecialTokens s) : this(s.Bos, s.Eos.ToArray(), s.Pad, s.Unk) { }
        public bool Equals(SpecialTokensView? o) => o != null && Bos == o.Bos && Eos.SequenceEqual(o.Eos) && Pad == o.Pad && Unk == o.Unk;
        public override int GetHashCode() => HashCode.Combine(Bos, Pad, Unk);
    }

    /// <summary>generation.json: each prompt's text encodes (with special tokens as its settings say: deepseek BOS,
    /// qwen3 none) to its input_ids, and the output ids decode (skipping special tokens) to its text.</summary>
    private static void AssertGenerationPrompts(string model, bool addSpecialTokens)
    {
        var tok = Tokenizer(model, "tokenizer.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(Paths.Fixture("references", model, "generation.json")!));
        int n = 0;
        foreach (var p in doc.RootElement.GetProperty("prompts").EnumerateArray())
        {
            Assert.Equal(Ints(p.GetProperty("input_ids")), tok.Encode(p.GetProperty("prompt").GetString()!, addSpecialTokens));
            Assert.Equal(p.GetProperty("text").GetString(), tok.Decode(Ints(p.GetProperty("output_ids"))));
            Assert.Equal(p.GetProperty("new_text").GetString(), tok.Decode(Ints(p.GetProperty("new_ids"))));
            n++;
        }
        Assert.True(n >= 4);
    }

    /// <summary>reference_outputs input_ids: the first 4×128 ids of data/text/validation.txt joined with "\n",
    /// tokenized as one string with the model's special-token setting (deepseek: BOS first; qwen3: none).</summary>
    private static void AssertEvalBlocks(string model, bool addSpecialTokens)
    {
        var tok = Tokenizer(model, "tokenizer.json");
        string text = string.Join("\n", File.ReadAllLines(Paths.Fixture("data", "text", "validation.txt")!));
        var ids = tok.Encode(text, addSpecialTokens);
        using var refs = SafeTensorsFile.Open(Paths.Fixture("references", model, "reference_outputs.safetensors")!);
        var expected = refs.ReadInt32("input_ids");
        Assert.Equal(4 * 128, expected.Length);
        Assert.Equal(expected, ids.Take(expected.Length).ToArray());
    }

    [FixtureFact("references", "qwen3-moe-tiny", "generation.json")]
    public void Qwen3_moe_tiny_prompts_match() => AssertGenerationPrompts("qwen3-moe-tiny", addSpecialTokens: false);

    [FixtureFact("references", "deepseek-v3-tiny", "generation.json")]
    public void Deepseek_v3_tiny_prompts_match() => AssertGenerationPrompts("deepseek-v3-tiny", addSpecialTokens: true);

    [FixtureFact("references", "qwen3-moe-tiny", "reference_outputs.safetensors")]
    public void Qwen3_moe_tiny_eval_blocks_match() => AssertEvalBlocks("qwen3-moe-tiny", addSpecialTokens: false);

    [FixtureFact("references", "deepseek-v3-tiny", "reference_outputs.safetensors")]
    public void Deepseek_v3_tiny_eval_blocks_match() => AssertEvalBlocks("deepseek-v3-tiny", addSpecialTokens: true);

    [FixtureFact("deepseek-v3-tiny", "tokenizer.json")]
    public void Deepseek_v3_tiny_bos_comes_from_the_template()
    {
        var tok = Tokenizer("deepseek-v3-tiny", "tokenizer.json");
        Assert.Equal(4099, tok.Special.Bos);
        Assert.Equal(4101, tok.VocabSize);
        Assert.Equal(4099, tok.Encode("hi", true)[0]);
    }
}
