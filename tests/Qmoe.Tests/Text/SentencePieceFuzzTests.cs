using Qmoe.Text;

namespace Qmoe.Tests.Text;

/// <summary>
/// Mutated <c>.model</c> files (the embedded switch-tiny-8 unigram spiece.model, and with the shared fixtures the
/// Mistral BPE tokenizer.model with byte fallback: flipped bytes, truncations, overwritten and inserted runs) either
/// load and encode/decode, or are refused with a <see cref="QmoeException"/>; never another exception, a hang or a
/// runaway allocation. QMOE_FUZZ_ITERATIONS sets the count per model (CI: 200; the issue asks ≥ 10^4 offline).
/// </summary>
public class SentencePieceFuzzTests
{
    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("QMOE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 200;

    private static readonly string[] Samples = ["The LORD is my shepherd.", "  a\tb\u00a0c  ", "1998 😀 \u4e00\u0007 <s> <0x41>", ""];

    [Fact]
    public void Mutated_unigram_models_load_or_are_refused_cleanly() =>
        AssertMutationsLoadOrRefuse(File.ReadAllBytes(Path.Combine(Paths.TinyModel, "spiece.model")), new Random(12));

    [FixtureFact("tokenizers", "mistral-v01", "tokenizer.model")]
    public void Mutated_bpe_models_load_or_are_refused_cleanly() =>
        AssertMutationsLoadOrRefuse(File.ReadAllBytes(Paths.Fixture("tokenizers", "mistral-v01", "tokenizer.model")!), new Random(13));

    private static void AssertMutationsLoadOrRefuse(byte[] original, Random rng)
    {
        int loaded = 0;
        for (int it = 0; it < Iterations; it++)
        {
            byte[] bytes = Mutate(original, rng, out string how);
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                var tok = SentencePieceTokenizer.FromBytes(bytes, "fuzz.model");
                foreach (string s in Samples)
                {
                    int[] ids = tok.Encode(s, addSpecialTokens: true);
                    Assert.All(ids, id => Assert.InRange(id, 0, tok.VocabSize - 1));
                    tok.Decode(ids);
                }
                tok.Decode([.. Enumerable.Range(0, 64).Select(_ => rng.Next(tok.VocabSize))]);
                loaded++;
            }
            catch (QmoeException e)
            {
                Assert.DoesNotContain('\n', e.Message);
                Assert.StartsWith("fuzz.model: ", e.Message);
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {it} ({how}): {e.GetType().Name}: {e.Message}");
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 64L * bytes.Length + (64 << 20), $"iteration {it} ({how}) allocated {allocated} bytes");
        }
        Assert.True(loaded > 0, "no mutated model loaded: the mutations only test the refusal path");
    }

    private static byte[] Mutate(byte[] original, Random rng, out string how)
    {
        byte[] b = (byte[])original.Clone();
        switch (rng.Next(5))
        {
            case 0:
                int flips = rng.Next(1, 9);
                for (int i = 0; i < flips; i++) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                how = $"{flips} bit flips";
                return b;
            case 1:
                int keep = rng.Next(b.Length);
                how = $"truncated to {keep}";
                return b[..keep];
            case 2:
                int at = rng.Next(b.Length), len = rng.Next(1, 16);
                for (int i = at; i < Math.Min(b.Length, at + len); i++) b[i] = 0xFF;
                how = $"0xFF x{len} at {at}";
                return b;
            case 3:
                int from = rng.Next(b.Length), count = rng.Next(1, 64), to = rng.Next(b.Length);
                var chunk = b.AsSpan(from, Math.Min(count, b.Length - from)).ToArray();
                how = $"{chunk.Length} bytes from {from} inserted at {to}";
                return [.. b[..to], .. chunk, .. b[to..]];
            default:
                int pos = rng.Next(b.Length);
                b[pos] = (byte)rng.Next(256);
                how = $"byte {pos} = {b[pos]}";
                return b;
        }
    }
}
