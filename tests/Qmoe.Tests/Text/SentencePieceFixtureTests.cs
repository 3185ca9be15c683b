using System.Text.Json;
using Qmoe.Text;
using Xunit.Abstractions;

namespace Qmoe.Tests.Text;

/// <summary>
/// Real third-party SentencePiece models against the sentencepiece library's own ids and decodings
/// (../shared/fixtures/tokenizers): every line must match; a difference is a bug.
/// </summary>
public class SentencePieceFixtureTests(ITestOutputHelper output)
{
    /// <summary>The reference lines of an expected*.jsonl: text, ids, decoded.</summary>
    internal static List<(string Text, int[] Ids, string Decoded)> Expected(string path)
    {
        var lines = new List<(string, int[], string)>();
        foreach (string line in File.ReadLines(path))
        {
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            lines.Add((r.GetProperty("text").GetString()!, r.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                r.GetProperty("decoded").GetString()!));
        }
        return lines;
    }

    private void AssertMatches(string model, string expected)
    {
        var tok = SentencePieceTokenizer.Load(Paths.Fixture("tokenizers", model)!);
        var lines = Expected(Paths.Fixture("tokenizers", expected)!);
        int idMisses = 0, textMisses = 0;
        foreach (var (text, ids, decoded) in lines)
        {
            int[] got = tok.Encode(text, addSpecialTokens: false);
            if (!got.SequenceEqual(ids))
            {
                if (idMisses++ < 5) output.WriteLine($"ids  {JsonSerializer.Serialize(text)}\n want {string.Join(' ', ids)}\n got  {string.Join(' ', got)}");
            }
            string back = tok.Decode(ids);
            if (back != decoded && textMisses++ < 5) output.WriteLine($"text {JsonSerializer.Serialize(text)}\n want {JsonSerializer.Serialize(decoded)}\n got  {JsonSerializer.Serialize(back)}");
        }
        output.WriteLine($"{model}: ids {lines.Count - idMisses}/{lines.Count}, decoded {lines.Count - textMisses}/{lines.Count}");
        Assert.Equal(0, idMisses);
        Assert.Equal(0, textMisses);
    }

    [FixtureFact("tokenizers", "mistral-v01", "expected.jsonl")]
    public void Mistral_v01_bpe_matches_sentencepiece() => AssertMatches("mistral-v01/tokenizer.model", "mistral-v01/expected.jsonl");

    [FixtureFact("tokenizers", "mistral-v03", "expected.spm.jsonl")]
    public void Mistral_v03_bpe_matches_sentencepiece() => AssertMatches("mistral-v03/tokenizer.model", "mistral-v03/expected.spm.jsonl");

    [FixtureFact("tokenizers", "t5-legal", "expected.jsonl")]
    public void T5_unigram_matches_sentencepiece() => AssertMatches("t5-legal/spiece.model", "t5-legal/expected.jsonl");
}
