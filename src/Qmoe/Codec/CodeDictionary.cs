using System.Runtime.InteropServices;

namespace Qmoe.Codec;

/// <summary>
/// The "dict16" code of SPEC §5: 2^16 entries, each a sequence of 1–14 pair symbols (2–28 trits). Entry c is two
/// uint32 at <c>Entries[2c]</c>, <c>Entries[2c + 1]</c>: word0 = pairs 0..6 packed 4 bits each (bits 0–1 the
/// pair's first trit, bits 2–3 its second), shifted left by 4, OR the sequence length; word1 = pairs 7..13 packed
/// the same way, shifted left by 4, low nibble 0. Nibbles past the length are 0. A four-level dictionary (2-bit experts,
/// docs/FORMAT.md "Coded 2-bit experts") has the same layout over symbols 0..3: pair symbol s = t0 + 4·t1.
/// </summary>
public sealed class CodeDictionary
{
    /// <summary>Number of entries (codes are ushort).</summary>
    public const int Size = 1 << 16;
    /// <summary>Longest entry in pairs (two words of seven 4-bit pairs).</summary>
    public const int MaxPairs = 14;
    /// <summary>Bytes per entry in <see cref="DecodeTable"/>.</summary>
    public const int DecodeStride = 32;

    private readonly uint[] _entries;
    // The nine integer pair costs the entries were built from (Build), or null for stored entries.
    private readonly long[]? _costs;
    // Derived tables, built on first use (a race only builds one twice).
    private byte[]? _decodeTable, _tritCounts;
    private DictionaryTrie? _trie;

    /// <summary>The [65536, 2] entry words (word0, word1 per code).</summary>
    public ReadOnlySpan<uint> Entries => _entries;

    /// <summary>Human-readable origin ("iid p0=0.885", "fitted pair statistics", or the file it was read from).</summary>
    public string Source { get; }

    private CodeDictionary(uint[] entries, string source, long[]? costs = null, int levels = 3)
    {
        _entries = entries; Source = source; _costs = costs; Levels = levels;
    }

    /// <summary>Symbols per weight: 3 (ternary: 0, min, max) or 4 (a coded 2-bit expert's symbols).</summary>
    public int Levels { get; }

    /// <summary>Pair symbols (9 or 16).</summary>
    public int PairSymbols => Levels * Levels;

    /// <summary>
    /// The nine integer costs (see <see cref="PairModel.IntegerCosts"/>) this dictionary was built from, so that
    /// <see cref="Build(ReadOnlySpan{long}, string?)"/> regenerates it; empty for entries read from a stored table or trie.
    /// </summary>
    public ReadOnlySpan<long> BuildCosts => _costs;

    /// <summary>True when <see cref="BuildCosts"/> regenerate the entries (the file may record the costs instead of the trie).</summary>
    public bool IsRegenerable => _costs != null;

    private static readonly Lazy<CodeDictionary> s_default = new(() => Build(PairModel.Iid(PairModel.DefaultP0), $"iid p0={PairModel.DefaultP0}"));

    /// <summary>QMoE's default dictionary: built for independent trits with P(zero) = 0.885.</summary>
    public static CodeDictionary Default => s_default.Value;

    /// <summary>Number of pairs (1–14) of entry <paramref name="code"/>.</summary>
    public int PairCount(int code) => (int)(_entries[2 * code] & 15);

    /// <summary>Trit i (0..27, below 2·PairCount) of entry <paramref name="code"/>.</summary>
    public int Trit(int code, int i)
    {
        int pair = i >> 1;
        uint word = _entries[2 * code + (pair >= 7 ? 1 : 0)];
        int shift = 4 + 4 * (pair % 7) + 2 * (i & 1);
        return (int)((word >> shift) & 3);
    }

    /// <summary>
    /// Every entry expanded to trits, one byte each: <see cref="DecodeStride"/> bytes per code, the first
    /// 2·PairCount meaningful, the rest 0 (so a decoder may copy a whole stride and overwrite the excess).
    /// </summary>
    public ReadOnlySpan<byte> DecodeTable => _decodeTable ??= BuildDecodeTable();

    private byte[] BuildDecodeTable()
    {
        var table = new byte[Size * DecodeStride];
        for (int c = 0; c < Size; c++)
        {
            int n = 2 * PairCount(c);
            for (int i = 0; i < n; i++) table[c * DecodeStride + i] = (byte)Trit(c, i);
        }
        return table;
    }

    /// <summary>Per code: how many of its trits are 0, 1 and 2 ([65536, 3]).</summary>
    internal ReadOnlySpan<byte> TritCounts => _tritCounts ??= BuildTritCounts();

    private byte[] BuildTritCounts()
    {
        var counts = new byte[Size * 3];
        for (int c = 0; c < Size; c++)
        {
            ulong pairs = (_entries[2 * c] >> 4) | (ulong)(_entries[2 * c + 1] >> 4) << 28; // 14 nibbles
            for (int j = PairCount(c); j > 0; j--, pairs >>= 4)
            {
                counts[3 * c + (int)(pairs & 3)]++;
                counts[3 * c + (int)((pairs >> 2) & 3)]++;
            }
        }
        return counts;
    }

    internal DictionaryTrie Trie => _trie ??= new DictionaryTrie(this);

    /// <summary>Packs a sequence of pair symbols (s = t0 + L·t1, L = <paramref name="levels"/>, length 1–14) into the two entry words.</summary>
    public static (uint Word0, uint Word1) Pack(ReadOnlySpan<byte> pairSymbols, int levels = 3)
    {
        if (pairSymbols.Length is < 1 or > MaxPairs) throw new ArgumentException("entry length must be 1..14 pairs", nameof(pairSymbols));
        uint w0 = (uint)pairSymbols.Length, w1 = 0;
        for (int j = 0; j < pairSymbols.Length; j++)
        {
            int s = pairSymbols[j];
            if (s >= levels * levels) throw new ArgumentException($"pair symbol {s} out of range", nameof(pairSymbols));
            uint nibble = (uint)(s % levels | (s / levels) << 2);
            if (j < 7) w0 |= nibble << (4 + 4 * j);
            else w1 |= nibble << (4 + 4 * (j - 7));
        }
        return (w0, w1);
    }

    /// <summary>
    /// Builds the dictionary for <paramref name="model"/>: codes 0..8 are the nine single pairs (so every row is
    /// encodable), then, in order of code, the most probable sequences of 2–14 pairs. Order (the tie rule):
    /// cost Σ round(−log2 P(s) · 2^32) ascending, then length ascending, then the symbol sequence in
    /// lexicographic order. Every prefix of a sequence costs strictly less (or is shorter at equal cost), so the
    /// set is prefix-closed and greedy longest match along a trie always succeeds. For a model under which the
    /// single pairs are among the 65,536 most probable sequences (the default p0 = 0.885 and any fitted model of
    /// real weights), the set is exactly the 65,536 most probable sequences of length ≤ 14.
    /// </summary>
    public static CodeDictionary Build(PairModel model, string? source = null) => Build(model.IntegerCosts(), source);

    /// <summary>
    /// <see cref="Build(PairModel, string?)"/> from the nine integer pair costs directly (integer arithmetic only, so
    /// the same costs give the same entries on every machine); sixteen costs build a four-level dictionary. Costs must
    /// lie in 1..<see cref="MaxCost"/>.
    /// </summary>
    public static CodeDictionary Build(ReadOnlySpan<long> costs, string? source = null)
    {
        if (costs.Length is not (9 or 16)) throw new ArgumentException("need 9 or 16 pair costs", nameof(costs));
        int symbolCount = costs.Length, levels = symbolCount == 16 ? 4 : 3;
        foreach (long c in costs)
            if (c is < 1 or > MaxCost) throw new ArgumentException($"pair cost {c} outside 1..2^40", nameof(costs));
        long[] cost = costs.ToArray();
        var entries = new uint[2 * Size];
        var symbols = new byte[MaxPairs];
        // Sequence packed most-significant symbol first: symbol j at bits 60-4j (so same-length lexicographic
        // order is numeric order).
        // At most nine (sixteen) children are queued per emitted entry: sized once, never grown.
        var heap = new PriorityQueue<ulong, SequenceKey>(Size * symbolCount);
        int code = 0;
        void Emit(ulong packed, int length, long c)
        {
            for (int j = 0; j < length; j++) symbols[j] = (byte)((packed >> (60 - 4 * j)) & 15);
            var (w0, w1) = Pack(symbols.AsSpan(0, length), levels);
            entries[2 * code] = w0;
            entries[2 * code + 1] = w1;
            code++;
            if (length < MaxPairs)
                for (int s = 0; s < symbolCount; s++)
                {
                    ulong child = packed | (ulong)s << (60 - 4 * length);
                    heap.Enqueue(child, new SequenceKey(c + cost[s], length + 1, child));
                }
        }
        for (int s = 0; s < symbolCount; s++) Emit((ulong)s << 60, 1, cost[s]);
        while (code < Size)
        {
            heap.TryDequeue(out ulong packed, out var key);
            Emit(packed, key.Length, key.Cost);
        }
        return new CodeDictionary(entries, source ?? "built", cost, levels);
    }

    /// <summary>Largest pair cost <see cref="Build(ReadOnlySpan{long}, string?)"/> accepts: P(s) ≥ 2^−256 (sums of 14 stay far from overflow).</summary>
    public const long MaxCost = 1L << 40;

    private readonly record struct SequenceKey(long Cost, int Length, ulong Packed) : IComparable<SequenceKey>
    {
        public int CompareTo(SequenceKey other)
        {
            int c = Cost.CompareTo(other.Cost);
            if (c != 0) return c;
            c = Length.CompareTo(other.Length);
            return c != 0 ? c : Packed.CompareTo(other.Packed);
        }
    }

    /// <summary>
    /// Wraps stored entry words ([65536, 2]) after checking every entry: length 1–14, trits ≤ 2, nibbles past the
    /// length and word1's low nibble zero. <paramref name="where"/> names the source in error messages.
    /// </summary>
    public static CodeDictionary FromEntries(ReadOnlySpan<uint> words, string where, string? source = null)
    {
        // Four-level dictionaries are only ever stored as their cost record (DictionaryRecord), never as entries.
        if (words.Length != 2 * Size) throw new QmoeException($"{where}: dictionary has {words.Length / 2} entries, expected {Size}");
        for (int c = 0; c < Size; c++)
        {
            uint w0 = words[2 * c], w1 = words[2 * c + 1];
            int n = (int)(w0 & 15);
            if (n is < 1 or > MaxPairs) throw new QmoeException($"{where}: dictionary entry {c} has length {n} (must be 1..14)");
            if ((w1 & 15) != 0) throw new QmoeException($"{where}: dictionary entry {c} has a non-zero low nibble in word1");
            for (int j = 0; j < MaxPairs; j++)
            {
                uint nibble = ((j < 7 ? w0 : w1) >> (4 + 4 * (j % 7))) & 15;
                if (j >= n ? nibble != 0 : (nibble & 3) == 3 || (nibble >> 2) == 3)
                    throw new QmoeException($"{where}: dictionary entry {c} has an invalid pair at position {j}");
            }
        }
        return new CodeDictionary(words.ToArray(), source ?? where);
    }

    /// <summary>The same dictionary (entries and derived tables shared) under another <see cref="Source"/>.</summary>
    public CodeDictionary WithSource(string source) =>
        new(_entries, source, _costs, Levels) { _decodeTable = _decodeTable, _tritCounts = _tritCounts, _trie = _trie };

    /// <summary>Wraps entry words known to be well formed (built here), without re-checking them.</summary>
    internal static CodeDictionary FromValidEntries(uint[] words, string source) => new(words, source);

    /// <summary>Pair symbol j (s = t0 + L·t1, L = <see cref="Levels"/>) of entry <paramref name="code"/>.</summary>
    public int Symbol(int code, int j) => Trit(code, 2 * j) + Levels * Trit(code, 2 * j + 1);

    /// <summary>
    /// Sort key of the first <paramref name="pairs"/> pairs of an entry (all when −1): length in the top bits, then
    /// the symbols most significant first, so key order is breadth-first (length, then lexicographic) order.
    /// </summary>
    internal ulong Key(int code, int pairs = -1)
    {
        int n = pairs < 0 ? PairCount(code) : pairs;
        ulong key = (ulong)n << 60;
        for (int j = 0; j < n; j++) key |= (ulong)Symbol(code, j) << (56 - 4 * (j + 1));
        return key;
    }

    /// <summary>True when codes are in breadth-first order and the entry set is prefix-closed (the v2 stored form).</summary>
    public bool IsCanonical
    {
        get
        {
            var keys = new HashSet<ulong>();
            for (int c = 0; c < Size; c++)
            {
                if (c > 0 && Key(c) <= Key(c - 1)) return false;
                int n = PairCount(c);
                if (n > 1 && !keys.Contains(Key(c, n - 1))) return false;
                keys.Add(Key(c));
            }
            return true;
        }
    }

    /// <summary>The same entries renumbered in breadth-first order (length, then lexicographic): the order v2 stores.</summary>
    public CodeDictionary Canonical()
    {
        var order = Enumerable.Range(0, Size).OrderBy(c => Key(c)).ToArray();
        var words = new uint[2 * Size];
        for (int i = 0; i < Size; i++)
        {
            words[2 * i] = _entries[2 * order[i]];
            words[2 * i + 1] = _entries[2 * order[i] + 1];
        }
        return new CodeDictionary(words, Source, _costs, Levels);
    }

    /// <summary>Byte view of the entries, as stored in <c>qmoe.dictionary</c> (little-endian U32 [65536, 2]).</summary>
    public ReadOnlySpan<byte> AsBytes() => MemoryMarshal.AsBytes(_entries.AsSpan());

    /// <summary>True when both dictionaries hold the same entries.</summary>
    public bool SameEntries(CodeDictionary other) => _entries.AsSpan().SequenceEqual(other._entries);
}
