using System.Text.Json;
using Qmoe.Text;

namespace Qmoe.Tests.Text;

public class T5TokenizerTests
{
    private static readonly T5Tokenizer Switch = T5Tokenizer.Load(Paths.TinyModel, sentinelCount: 100);

    /// <summary>Each prompt of a Switch generation.json built from text chunks: (text, expected input_ids).</summary>
    private static IEnumerable<(string Text, int[] Ids)> SwitchPrompts(string generationJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(generationJson));
        foreach (var p in doc.RootElement.GetProperty("prompts").EnumerateArray())
        {
            if (p.GetProperty("prompt_chunks").ValueKind != JsonValueKind.Array) continue; // token-id prompts from the eval set
            string text = string.Join(" ", p.GetProperty("prompt_chunks").EnumerateArray().Select(c => c.GetString()));
            yield return (text, p.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        }
    }

    private static void AssertPromptsReproduced(T5Tokenizer tok, string generationJson)
    {
        var prompts = SwitchPrompts(generationJson).ToList();
        Assert.NotEmpty(prompts);
        foreach (var (text, ids) in prompts) Assert.Equal(ids, tok.Encode(text));
    }

    [Fact]
    public void Vocabulary_matches_the_switch_config()
    {
        Assert.Equal(3900, Switch.PieceCount);
        Assert.Equal(4000, Switch.VocabSize);
        Assert.Equal(3999, Switch.SentinelId(0));
        Assert.Equal(3900, Switch.SentinelId(99));
    }

    [Fact]
    public void Embedded_generation_prompts_reproduce_input_ids() =>
        AssertPromptsReproduced(Switch, Path.Combine(Paths.TestData, "switch-tiny-8", "generation.json"));

    [FixtureFact("references", "switch-small-32", "generation.json")]
    public void Switch_small_generation_prompts_reproduce_input_ids() =>
        AssertPromptsReproduced(T5Tokenizer.Load(Paths.Fixture("switch-small-32")!, 100),
            Paths.Fixture("references", "switch-small-32", "generation.json")!);

    [FixtureFact("references", "mixtral-tiny-8", "generation.json")]
    public void Mixtral_generation_prompts_reproduce_ids_and_text()
    {
        var tok = T5Tokenizer.Load(Paths.Fixture("mixtral-tiny-8")!, sentinelCount: 0);
        Assert.Equal(3900, tok.VocabSize);
        using var doc = JsonDocument.Parse(File.ReadAllText(Paths.Fixture("references", "mixtral-tiny-8", "generation.json")!));
        foreach (var p in doc.RootElement.GetProperty("prompts").EnumerateArray())
        {
            int[] ids = p.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int[] output = p.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            // Decoder-only prompts carry no eos.
            Assert.Equal(ids, tok.Encode(p.GetProperty("prompt").GetString()!, addSpecialTokens: false));
            Assert.Equal(p.GetProperty("text").GetString(), tok.Decode(output));
        }
    }

    [Fact]
    public void Sentinels_split_the_text_and_decode_back()
    {
        int[] ids = Switch.Encode("The LORD is my shepherd; I shall not <extra_id_0>.");
        Assert.Equal([51, 38, 15, 45, 2178, 20, 14, 25, 28, 3999, 39, 5, 1], ids);
        Assert.Equal("The LORD is my shepherd; I shall not <extra_id_0> .", Switch.Decode(ids));
        Assert.Equal("In the beginning", Switch.Decode(Switch.Encode("In the beginning")));
        Assert.Equal([Switch.SentinelId(3), Switch.SentinelId(4), T5Tokenizer.EosId], Switch.Encode("<extra_id_3> <extra_id_4>"));
        Assert.Equal([T5Tokenizer.EosId], Switch.Encode(""));
    }

    [Fact]
    public void Normalization_follows_the_models_nmt_nfkc_map()
    {
        // Control characters vanish (train.txt paragraph 12 starts with BEL BEL BEL), spaces collapse,
        // compatibility forms fold (NFKC), so these pairs must encode identically.
        Assert.Equal(Switch.Encode("*** NEWSFLASH ***"), Switch.Encode("\a\a\a *** NEWSFLASH ***"));
        Assert.Equal(Switch.Encode("a b c"), Switch.Encode("  a \t b\u00a0\u00a0 c  "));
        Assert.Equal(Switch.Encode("fine"), Switch.Encode("\ufb01ne"));
        Assert.Equal(Switch.Encode("A"), Switch.Encode("\uff21"));
        // An unknown character is one id, a run of them merges into one.
        Assert.Equal([Switch.Encode("a")[0], T5Tokenizer.UnkId, T5Tokenizer.EosId], Switch.Encode("a\u4e00\u4e01\u4e02"));
    }

    [Fact]
    public void Tied_segmentations_break_like_sentencepiece()
    {
        // "▁H"+"mm"+"m" and "▁H"+"m"+"mm" score exactly the same; the training data (block 87) has the former.
        Assert.Equal([383, 1147, 69, 1], Switch.Encode("Hmmm"));
    }

    [Fact]
    public void Bad_input_is_refused()
    {
        Assert.Throws<QmoeException>(() => Switch.Decode([4000]));
        Assert.Throws<QmoeException>(() => Switch.Decode([-1]));
        Assert.Throws<QmoeException>(() => Switch.Encode("<extra_id_100>"));
        var noSentinels = T5Tokenizer.Load(Paths.TinyModel, 0);
        Assert.Throws<QmoeException>(() => noSentinels.Decode([3900]));
        Assert.Throws<QmoeException>(() => noSentinels.Encode("a <extra_id_0>"));
    }

    [Fact]
    public void Missing_or_corrupt_model_is_refused_naming_the_directory()
    {
        using var dir = Paths.Temp();
        var e = Assert.Throws<QmoeException>(() => T5Tokenizer.Load(dir.Path, 100));
        Assert.Contains(dir.Path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        File.WriteAllBytes(dir.File("spiece.model"), [1, 2, 3, 4, 5]);
        e = Assert.Throws<QmoeException>(() => T5Tokenizer.Load(dir.Path, 100));
        Assert.Contains(dir.Path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}
