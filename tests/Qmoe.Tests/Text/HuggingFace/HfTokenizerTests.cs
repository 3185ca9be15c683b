using System.Text;
using System.Text.Json;
using Qmoe.Text.HuggingFace;

namespace Qmoe.Tests.Text.HuggingFace;

/// <summary>The small tokenizer.json files of tests/data/hf-tokenizers against Hugging Face tokenizers' output,
/// and the refusals of bad or unsupported files.</summary>
public class HfTokenizerTests
{
    private static string Data(string name) => Path.Combine(Paths.TestData, "hf-tokenizers", name);

    [Theory]
    [InlineData("unigram")]
    [InlineData("subword-bpe")]
    [InlineData("metaspace-bpe")]
    public void Matches_the_reference_library(string name)
    {
        var tok = HfTokenizer.Load(Path.Combine(Data(name), "tokenizer.json"));
        int lines = 0;
        foreach (var line in File.ReadLines(Path.Combine(Data(name), "expected.jsonl")))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            string text = r.GetProperty("text").GetString()!;
            int[] ids = r.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            int[] special = r.GetProperty("ids_special").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            string what = $"{name} line {++lines} {JsonSerializer.Serialize(text)}";
            Assert.True(ids.AsSpan().SequenceEqual(tok.Encode(text, false)), what);
            Assert.True(special.AsSpan().SequenceEqual(tok.Encode(text, true)), what + " (special)");
            Assert.True(r.GetProperty("decoded").GetString() == tok.Decode(ids), what + " (decoded)");
            Assert.True(r.GetProperty("decoded_special").GetString() == tok.Decode(special, skipSpecialTokens: false), what + " (decoded_special)");
        }
        Assert.True(lines > 150);
    }

    [Fact]
    public void Kinds_and_special_ids()
    {
        var unigram = HfTokenizer.Load(Path.Combine(Data("unigram"), "tokenizer.json"));
        Assert.Equal("hf-unigram", unigram.Kind);
        Assert.Null(unigram.Special.Bos);
        Assert.Equal([2], unigram.Special.Eos);
        Assert.Equal(0, unigram.Special.Unk);
        var bert = HfTokenizer.Load(Path.Combine(Data("subword-bpe"), "tokenizer.json"));
        Assert.Equal("hf-bpe", bert.Kind);
        Assert.Equal(bert.TokenToId("[CLS]"), bert.Special.Bos);
        Assert.Equal([bert.TokenToId("[SEP]")!.Value], bert.Special.Eos);
    }

    /// <summary>A minimal byte-level BPE tokenizer.json; <paramref name="edit"/> changes its JSON before writing.</summary>
    internal static string MinimalJson(Action<Dictionary<string, object?>>? edit = null)
    {
        var vocab = new Dictionary<string, int>();
        foreach (char c in ByteLevelAlphabet.ByteToChar) vocab[c.ToString()] = vocab.Count;
        var merges = new List<string[]>();
        foreach (var (a, b) in new[] { ("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r") })
        {
            merges.Add([a, b]);
            vocab.TryAdd(a + b, vocab.Count);
        }
        var root = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new object[] { new Dictionary<string, object> { ["id"] = vocab.Count, ["content"] = "<|end|>", ["special"] = true,
                ["normalized"] = false, ["lstrip"] = false, ["rstrip"] = false, ["single_word"] = false } },
            ["normalizer"] = new Dictionary<string, object> { ["type"] = "NFC" },
            ["pre_tokenizer"] = new Dictionary<string, object> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true },
            ["post_processor"] = new Dictionary<string, object> { ["type"] = "ByteLevel" },
            ["decoder"] = new Dictionary<string, object> { ["type"] = "ByteLevel" },
            ["model"] = new Dictionary<string, object?> { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = merges },
        };
        edit?.Invoke(root);
        return JsonSerializer.Serialize(root);
    }

    private static HfTokenizer Parse(string json) => HfTokenizer.Parse(Encoding.UTF8.GetBytes(json), "tokenizer.json");

    [Fact]
    public void Minimal_byte_level_round_trips()
    {
        var tok = Parse(MinimalJson());
        var ids = tok.Encode("hello world<|end|> ☃", false);
        Assert.Equal(tok.TokenToId("hello"), ids[0]);
        Assert.Equal(tok.TokenToId("<|end|>"), ids[^5]);
        Assert.Equal("hello world ☃", tok.Decode(ids));
        Assert.Equal("hello world<|end|> ☃", tok.Decode(ids, skipSpecialTokens: false));
    }

    [Theory]
    [InlineData("pre_tokenizer", "{\"type\":\"UnicodeScripts\"}", "pre_tokenizer: pre_tokenizer type UnicodeScripts is not supported")]
    [InlineData("normalizer", "{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"\"}", "normalizer: normalizer type Precompiled is not supported")]
    [InlineData("decoder", "{\"type\":\"CTC\"}", "decoder: decoder type CTC is not supported")]
    [InlineData("post_processor", "{\"type\":\"Foo\"}", "post_processor: post_processor type Foo is not supported")]
    [InlineData("truncation", "{\"max_length\":5}", "truncation: truncation is not supported")]
    [InlineData("normalizer", "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(\"},\"content\":\"\"}", "normalizer.pattern.Regex: regex is not supported")]
    [InlineData("pre_tokenizer", "{\"type\":\"Split\",\"pattern\":{\"String\":\"\"},\"behavior\":\"Isolated\",\"invert\":false}", "pre_tokenizer.pattern.String: empty pattern")]
    [InlineData("pre_tokenizer", "{\"type\":\"Split\",\"pattern\":{\"String\":\"a\"},\"behavior\":\"Sideways\",\"invert\":false}", "pre_tokenizer.behavior: behavior Sideways is not supported")]
    [InlineData("pre_tokenizer", "{\"type\":\"ByteLevel\",\"add_prefix_space\":\"yes\"}", "pre_tokenizer.add_prefix_space: expected true or false, found a string")]
    public void Unsupported_or_wrong_components_are_refused_by_name(string field, string componentJson, string message)
    {
        string json = MinimalJson(root => root[field] = JsonSerializer.Deserialize<JsonElement>(componentJson));
        var e = Assert.Throws<QmoeException>(() => Parse(json));
        Assert.StartsWith("tokenizer.json: ", e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Bad_models_are_refused_naming_the_field()
    {
        Assert.Contains("not valid JSON", Assert.Throws<QmoeException>(() => Parse("{\"model\": ")).Message);
        Assert.Contains("model: missing", Assert.Throws<QmoeException>(() => Parse("{}")).Message);
        string dup = MinimalJson(r => ((Dictionary<string, object?>)r["model"]!)["vocab"] = new Dictionary<string, int> { ["a"] = 0, ["b"] = 0 });
        Assert.Contains("id 0 is given to both", Assert.Throws<QmoeException>(() => Parse(dup)).Message);
        string sparse = MinimalJson(r => ((Dictionary<string, object?>)r["model"]!)["vocab"] = new Dictionary<string, long> { ["a"] = 0, ["b"] = 1L << 40 });
        Assert.Contains("model.vocab", Assert.Throws<QmoeException>(() => Parse(sparse)).Message);
        string badMerge = MinimalJson(r => ((Dictionary<string, object?>)r["model"]!)["merges"] = new[] { "xx yy" });
        Assert.Contains("model.merges[0]: token \"xx\" is not in the vocabulary", Assert.Throws<QmoeException>(() => Parse(badMerge)).Message);
        string dropout = MinimalJson(r => ((Dictionary<string, object?>)r["model"]!)["dropout"] = 0.1);
        Assert.Contains("model.dropout: BPE dropout", Assert.Throws<QmoeException>(() => Parse(dropout)).Message);
        string wordPiece = MinimalJson(r => ((Dictionary<string, object?>)r["model"]!)["type"] = "WordPiece");
        Assert.Contains("model.type: model type WordPiece is not supported", Assert.Throws<QmoeException>(() => Parse(wordPiece)).Message);
        var missing = Assert.Throws<QmoeException>(() => HfTokenizer.Load(Path.Combine(Paths.TestData, "no-such", "tokenizer.json")));
        Assert.Contains("not found", missing.Message);
    }

    [Fact]
    public void Decode_refuses_ids_out_of_range()
    {
        var tok = Parse(MinimalJson());
        Assert.Throws<QmoeException>(() => tok.Decode([tok.VocabSize]));
        Assert.Throws<QmoeException>(() => tok.Decode([-1]));
    }

    [Theory]
    [InlineData("e\u0301", "Nfc", "é")]
    [InlineData("é", "Nfd", "e\u0301")]
    [InlineData("ﬁ①", "Nfkc", "fi1")]
    [InlineData("\u1100\u1161\u11A8", "Nfc", "각")]
    [InlineData("각", "Nfd", "\u1100\u1161\u11A8")]
    [InlineData("a\u0323\u0302", "Nfc", "ậ")]
    [InlineData("a\u0302\u0323", "Nfc", "ậ")]
    [InlineData("\u2126", "Nfc", "\u03A9")]
    [InlineData("\U0001D400", "Nfkc", "A")]
    [InlineData("plain ascii", "Nfkd", "plain ascii")]
    public void Unicode_normalization(string input, string form, string expected)
    {
        Assert.Equal(expected, UnicodeNormalizer.Normalize(input, Enum.Parse<UnicodeForm>(form)));
        Assert.Equal(expected, UnicodeNormalizer.Normalize(input, Enum.Parse<UnicodeForm>(form), quickCheck: false));
    }

    [Fact]
    public void Normalization_quick_check_agrees_with_the_full_algorithm()
    {
        // Every input line of the test data (scripts, emoji, compatibility characters, Hangul, combining marks).
        var texts = File.ReadLines(Path.Combine(Data("unigram"), "inputs.jsonl")).Select(l => JsonSerializer.Deserialize<string>(l)!).ToList();
        for (int c = 0xA0; c < 0x3400; c++) { texts.Add("a" + (char)c + "b"); texts.Add("a" + (char)c + "\u0301b"); } // each character alone and before a mark
        foreach (var form in Enum.GetValues<UnicodeForm>())
            foreach (var t in texts)
                Assert.Equal(UnicodeNormalizer.Normalize(t, form, quickCheck: false), UnicodeNormalizer.Normalize(t, form));
    }
}
