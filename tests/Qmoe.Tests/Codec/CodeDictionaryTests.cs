using Qmoe.Codec;

namespace Qmoe.Tests.Codec;

public class CodeDictionaryTests
{
    private static int[] Symbols(CodeDictionary d, int c) =>
        Enumerable.Range(0, d.PairCount(c)).Select(j => d.Trit(c, 2 * j) + 3 * d.Trit(c, 2 * j + 1)).ToArray();

    private static string Key(int[] s) => string.Join(",", s);

    private static bool LexLess(int[] a, int[] b)
    {
        for (int i = 0; i < a.Length; i++)
            if (a[i] != b[i]) return a[i] < b[i];
        return false;
    }

    [Fact]
    public void DefaultIsPrefixClosedUniqueAndStartsWithTheSinglePairs()
    {
        var d = CodeDictionary.Default;
        var all = new HashSet<string>();
        for (int c = 0; c < CodeDictionary.Size; c++)
        {
            var s = Symbols(d, c);
            Assert.InRange(s.Length, 1, CodeDictionary.MaxPairs);
            Assert.True(all.Add(Key(s)), $"entry {c} duplicated");
        }
        for (int s = 0; s < 9; s++) Assert.Equal([s], Symbols(d, s));
        for (int c = 0; c < CodeDictionary.Size; c++)
        {
            var s = Symbols(d, c);
            for (int n = 1; n < s.Length; n++) Assert.Contains(Key(s[..n]), all);
        }
    }

    [Fact]
    public void DefaultEntriesAreTheMostProbableInTieRuleOrder()
    {
        var d = CodeDictionary.Default;
        double p0 = 0.885, q = (1 - p0) / 2;
        double LogP(int[] s) => s.Sum(x => (x % 3 == 0 ? Math.Log(p0) : Math.Log(q)) + (x / 3 == 0 ? Math.Log(p0) : Math.Log(q)));
        // Codes 9.. are in non-increasing probability; equal probability → shorter, then lexicographically smaller.
        for (int c = 10; c < CodeDictionary.Size; c++)
        {
            int[] a = Symbols(d, c - 1), b = Symbols(d, c);
            double la = LogP(a), lb = LogP(b);
            Assert.True(la >= lb - 1e-9, $"entry {c} more probable than entry {c - 1}");
            if (Math.Abs(la - lb) < 1e-12)
                Assert.True(a.Length < b.Length || a.Length == b.Length && LexLess(a, b), $"tie rule broken at entry {c}");
        }
        // Nothing left out is more probable than the least probable entry: every child of an entry that is not
        // itself an entry has probability ≤ that of the last entry.
        var all = Enumerable.Range(0, CodeDictionary.Size).Select(c => Key(Symbols(d, c))).ToHashSet();
        double last = LogP(Symbols(d, CodeDictionary.Size - 1));
        for (int c = 0; c < CodeDictionary.Size; c += 97)
        {
            var s = Symbols(d, c);
            if (s.Length == CodeDictionary.MaxPairs) continue;
            for (int x = 0; x < 9; x++)
                if (!all.Contains(Key([.. s, x]))) Assert.True(LogP([.. s, x]) <= last + 1e-9);
        }
    }

    [Fact]
    public void EntryLayoutMatchesTheSpec()
    {
        // pairs (t0, t1): (1,0) (0,2) (2,1) ... 8 pairs so word1 is used.
        byte[] s = [1, 6, 5, 0, 8, 3, 4, 2];
        var (w0, w1) = CodeDictionary.Pack(s);
        Assert.Equal(8u, w0 & 15);
        Assert.Equal(0b0001u, (w0 >> 4) & 15);        // t0 = 1, t1 = 0
        Assert.Equal(0b1000u, (w0 >> 8) & 15);        // s = 6: t0 = 0, t1 = 2
        Assert.Equal(0b0110u, (w0 >> 12) & 15);       // s = 5: t0 = 2, t1 = 1
        Assert.Equal(0b0010u, (w1 >> 4) & 15);        // pair 7: s = 2
        Assert.Equal(0u, w1 & 15);
        Assert.Equal(0u, w1 >> 8);
    }

    [Fact]
    public void BuildIsDeterministicAndFromEntriesRoundTrips()
    {
        var a = CodeDictionary.Build(PairModel.Iid(0.885));
        Assert.True(a.SameEntries(CodeDictionary.Default));
        var b = CodeDictionary.FromEntries(a.Entries, "test");
        Assert.True(b.SameEntries(a));
        Assert.Equal(a.DecodeTable.ToArray(), b.DecodeTable.ToArray());
    }

    [Theory]
    [InlineData(0, 0u, 0u, "length 0")]
    [InlineData(5, 15u, 0u, "length 15")]
    [InlineData(7, 1u | (3u << 4), 0u, "invalid pair")]
    [InlineData(9, 1u | (1u << 8), 0u, "invalid pair")]
    [InlineData(11, 1u, 1u, "low nibble")]
    public void FromEntriesRefusesBadEntries(int code, uint w0, uint w1, string expected)
    {
        var words = CodeDictionary.Default.Entries.ToArray();
        words[2 * code] = w0;
        words[2 * code + 1] = w1;
        var e = Assert.Throws<QmoeException>(() => CodeDictionary.FromEntries(words, "x.safetensors"));
        Assert.Contains($"entry {code}", e.Message);
        Assert.Contains(expected, e.Message);
    }
}

public class DictionaryTrieMaskTests
{
    [Fact]
    public void CanonicalDefaultRoundTripsThroughTheMask()
    {
        var canonical = CodeDictionary.Default.Canonical();
        Assert.True(canonical.IsCanonical);
        Assert.False(CodeDictionary.Default.IsCanonical); // best-first order
        var mask = DictionaryTrieMask.Encode(canonical);
        Assert.InRange(mask.Length, 9000, 74000); // 1 bit per leaf, 10 per inner node
        Assert.True(DictionaryTrieMask.Decode(mask, "test").SameEntries(canonical));
        // same entry set as the default, only renumbered
        var a = Enumerable.Range(0, CodeDictionary.Size).Select(c => CodeDictionary.Default.Key(c)).Order();
        var b = Enumerable.Range(0, CodeDictionary.Size).Select(c => canonical.Key(c));
        Assert.Equal(a, b);
    }

    [Fact]
    public void BrokenMasksAreRefusedOrDecodeToAValidDictionary()
    {
        var canonical = CodeDictionary.Default.Canonical();
        var mask = DictionaryTrieMask.Encode(canonical);
        var rnd = new Random(4);
        int refused = 0;
        for (int i = 0; i < 40; i++)
        {
            var bad = (byte[])mask.Clone();
            int bit = rnd.Next(8 * bad.Length);
            bad[bit >> 3] ^= (byte)(1 << (bit & 7));
            // A flipped leaf flag re-parses the rest of the stream; whatever survives the checks is a well-formed
            // dictionary (the file's hash still catches the corruption in verify).
            try { Assert.False(DictionaryTrieMask.Decode(bad, "x").SameEntries(canonical)); }
            catch (QmoeException) { refused++; }
        }
        Assert.True(refused >= 30, $"only {refused} of 40 bit flips refused");
        Assert.Throws<QmoeException>(() => DictionaryTrieMask.Decode(mask.AsSpan(1), "x"));
        Assert.Throws<QmoeException>(() => DictionaryTrieMask.Decode([.. mask, 0], "x"));
    }
}
