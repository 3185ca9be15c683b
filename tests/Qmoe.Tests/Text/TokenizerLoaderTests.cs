using Qmoe.Models.DecoderOnly;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Tests.Text;

/// <summary>Which tokenizer a directory gets, and what its configs change (special ids, bos/eos, the eos list).</summary>
public class TokenizerLoaderTests
{
    private static Paths.TempDir DirWith(string modelFile, string asName)
    {
        var dir = Paths.Temp();
        File.Copy(modelFile, dir.File(asName));
        return dir;
    }

    [Fact]
    public void Switch_gets_the_t5_tokenizer_and_others_the_sentencepiece_core()
    {
        Assert.IsType<T5Tokenizer>(TokenizerLoader.ForDirectory(Paths.TinyModel));
        using var dir = DirWith(Path.Combine(Paths.TinyModel, "spiece.model"), "spiece.model");
        var tok = TokenizerLoader.ForDirectory(dir.Path);
        Assert.Equal("sentencepiece-unigram", tok.Kind);
        Assert.Equal((null, 0, 2), (tok.Special.Bos, tok.Special.Pad, tok.Special.Unk));
        Assert.Equal([1], tok.Special.Eos);
        int[] plain = tok.Encode("In the beginning", addSpecialTokens: false);
        Assert.Equal([.. plain, 1], tok.Encode("In the beginning", addSpecialTokens: true)); // spiece.model: T5's eos
        Assert.Equal(T5Tokenizer.Load(Paths.TinyModel, 0).Encode("In the beginning", false), plain);
    }

    [Fact]
    public void Configs_set_special_tokens_and_the_eos_list()
    {
        using var dir = DirWith(Path.Combine(Paths.TinyModel, "spiece.model"), "tokenizer.model");
        File.WriteAllText(dir.File("generation_config.json"), """{"eos_token_id": [1, 7], "bos_token_id": null}""");
        File.WriteAllText(dir.File("tokenizer_config.json"),
            """{"add_bos_token": true, "bos_token": {"content": "<pad>"}, "pad_token": null, "added_tokens_decoder": {"3900": {"content": "<extra>", "special": true}}}""");
        var tok = TokenizerLoader.ForDirectory(dir.Path);
        Assert.Equal(3901, tok.VocabSize);
        Assert.Equal(0, tok.Special.Bos);
        Assert.Equal([1, 7], tok.Special.Eos);
        Assert.Equal([0, .. tok.Encode("a b", false)], tok.Encode("a b", true));
        Assert.Equal("a b", tok.Decode([.. tok.Encode("a b", true), 3900]));
        Assert.Equal("<pad>a b<extra>", tok.Decode([.. tok.Encode("a b", true), 3900], skipSpecialTokens: false));

        File.WriteAllText(dir.File("tokenizer_config.json"), """{"bos_token": "<s>"}""");
        var e = Assert.Throws<QmoeException>(() => TokenizerLoader.ForDirectory(dir.Path));
        Assert.Contains("bos_token '<s>' is not a token", e.Message);
        File.WriteAllText(dir.File("tokenizer_config.json"), """{"add_bos_token": "yes"}""");
        e = Assert.Throws<QmoeException>(() => TokenizerLoader.ForDirectory(dir.Path));
        Assert.Contains("add_bos_token", e.Message);
        File.WriteAllText(dir.File("tokenizer_config.json"), "{");
        e = Assert.Throws<QmoeException>(() => TokenizerLoader.ForDirectory(dir.Path));
        Assert.Contains("tokenizer_config.json: not valid JSON", e.Message);
    }

    [Fact]
    public void No_tokenizer_file_is_refused_naming_what_was_looked_for()
    {
        using var dir = Paths.Temp();
        var e = Assert.Throws<QmoeException>(() => TokenizerLoader.ForDirectory(dir.Path));
        Assert.Contains("tokenizer.json, tokenizer.model or spiece.model", e.Message);
        // Kimi-K2 ships tiktoken.model only: named, with the way to calibrate without it.
        File.WriteAllText(dir.File(TokenizerLoader.TiktokenModel), "IQ== 0\n");
        e = Assert.Throws<QmoeException>(() => TokenizerLoader.ForDirectory(dir.Path));
        Assert.Contains("tiktoken.model (Kimi-K2's tiktoken BPE)", e.Message);
        Assert.Contains("--calib tokens.safetensors", e.Message);
    }

    [FixtureFact("mixtral-tiny-8", "model.safetensors")]
    public void Generation_stops_at_any_eos_of_the_list()
    {
        using var m = (DecoderOnlyRunnable)ModelLoader.Open(Paths.Fixture("mixtral-tiny-8")!);
        int[] prompt = m.Tokenizer.Encode("In the beginning", false);
        int[] output = DecoderOnlyGenerator.Greedy(m.Model, prompt, 6, forced: [5, 7, 9], eosIds: [7, 1]);
        Assert.Equal([.. prompt, 5, 7], output);
        Assert.Equal([.. prompt, 5, 7, 9, 5, 7, 9], DecoderOnlyGenerator.Greedy(m.Model, prompt, 6, forced: [5, 7, 9], eosIds: [1]));
    }
}
