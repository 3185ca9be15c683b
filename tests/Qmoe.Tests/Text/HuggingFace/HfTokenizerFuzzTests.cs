using System.Text;
using Qmoe.Text.HuggingFace;

namespace Qmoe.Tests.Text.HuggingFace;

/// <summary>
/// Mutated tokenizer.json files (byte flips, cuts, duplicated spans, numbers made huge or negative, component names
/// swapped) must load or fail with a <see cref="QmoeException"/>, never another exception, and a tokenizer that loads
/// must encode and decode without one. QMOE_FUZZ_ITERATIONS sets the count (CI: 200 per seed; ≥ 10^4 for a full run).
/// </summary>
public class HfTokenizerFuzzTests
{
    private static readonly string[] Names =
        ["BPE", "Unigram", "Sequence", "Split", "ByteLevel", "Metaspace", "Digits", "Regex", "String", "NFKC", "Replace",
         "Prepend", "Strip", "Isolated", "Removed", "MergedWithNext", "Contiguous", "TemplateProcessing", "ByteFallback", "Fuse", "first", "never"];
    private static readonly string[] Texts = ["hello world", "  <|end|>x<|end|>  ", "Ünïcödé ☃ 😀 123 4567", "a-b!c?d", "\t\n\r ", ""];

    private static int Iterations => int.TryParse(Environment.GetEnvironmentVariable("QMOE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 200;

    [Theory]
    [InlineData("minimal")]
    [InlineData("metaspace-bpe")]
    [InlineData("subword-bpe")]
    [InlineData("unigram")]
    public void Mutated_files_fail_only_with_QmoeException(string seedName)
    {
        byte[] seed = seedName == "minimal"
            ? Encoding.UTF8.GetBytes(HfTokenizerTests.MinimalJson())
            : File.ReadAllBytes(Path.Combine(Paths.TestData, "hf-tokenizers", seedName, "tokenizer.json"));
        var rnd = new Random(seedName.Length * 7919 + 17);
        int loaded = 0;
        for (int i = 0; i < Iterations; i++)
        {
            byte[] mutated = Mutate(seed, rnd);
            long before = GC.GetAllocatedBytesForCurrentThread();
            HfTokenizer tok;
            try { tok = HfTokenizer.Parse(mutated, "tokenizer.json"); }
            catch (QmoeException e)
            {
                Assert.DoesNotContain('\n', e.Message);
                continue;
            }
            catch (Exception e) { throw new Xunit.Sdk.XunitException($"iteration {i}: {e.GetType().Name} loading: {e.Message}\n{Snippet(mutated)}"); }
            loaded++;
            foreach (var text in Texts)
            {
                try
                {
                    var ids = tok.Encode(text, true);
                    tok.Decode(ids, skipSpecialTokens: false);
                    tok.Decode(ids);
                }
                catch (QmoeException) { }
                catch (Exception e) { throw new Xunit.Sdk.XunitException($"iteration {i}: {e.GetType().Name} on {text}: {e}\n{Snippet(mutated)}"); }
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 64L * seed.Length + (256 << 20), $"iteration {i}: {allocated} bytes allocated for a {seed.Length}-byte file");
        }
        Assert.True(loaded > 0, "no mutation loaded: the fuzz only exercised the JSON parser");
    }

    private static string Snippet(byte[] b) => Encoding.UTF8.GetString(b, 0, Math.Min(b.Length, 2000));

    private static byte[] Mutate(byte[] seed, Random rnd)
    {
        var b = new List<byte>(seed);
        int edits = 1 + rnd.Next(3);
        for (int e = 0; e < edits && b.Count > 2; e++)
        {
            int at = rnd.Next(b.Count);
            switch (rnd.Next(7))
            {
                case 0: b[at] = (byte)rnd.Next(256); break;                                   // flip a byte
                case 1: b.RemoveRange(at, Math.Min(b.Count - at, 1 + rnd.Next(16))); break;    // cut a span
                case 2: { int from = rnd.Next(b.Count); b.InsertRange(at, b.GetRange(from, Math.Min(32, b.Count - from))); break; } // duplicate
                case 3: ReplaceNumber(b, at, rnd.Next(4) switch { 0 => "-1", 1 => "4294967296", 2 => "99999999", _ => "1e300" }); break;
                case 4: ReplaceString(b, at, Names[rnd.Next(Names.Length)]); break;
                case 5: b.RemoveRange(at, b.Count - at); break;                                // truncate
                default: b.Insert(at, (byte)"{}[]\",:0\\"[rnd.Next(9)]); break;              // stray JSON syntax
            }
        }
        return b.ToArray();
    }

    /// <summary>Replaces the first number at or after <paramref name="at"/>.</summary>
    private static void ReplaceNumber(List<byte> b, int at, string value)
    {
        int i = at;
        while (i < b.Count && !(b[i] >= '0' && b[i] <= '9')) i++;
        int j = i;
        while (j < b.Count && (b[j] >= '0' && b[j] <= '9' || b[j] == '.')) j++;
        if (i >= b.Count) return;
        b.RemoveRange(i, j - i);
        b.InsertRange(i, Encoding.ASCII.GetBytes(value));
    }

    /// <summary>Replaces the content of the first string value at or after <paramref name="at"/>.</summary>
    private static void ReplaceString(List<byte> b, int at, string value)
    {
        int i = b.IndexOf((byte)'"', at);
        if (i < 0) return;
        int j = b.IndexOf((byte)'"', i + 1);
        if (j < 0) return;
        b.RemoveRange(i + 1, j - i - 1);
        b.InsertRange(i + 1, Encoding.UTF8.GetBytes(value));
    }
}
