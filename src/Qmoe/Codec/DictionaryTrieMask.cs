namespace Qmoe.Codec;

/// <summary>
/// The compact stored form of a prefix-closed dictionary (format v2, <c>qmoe.dictionary_trie</c>): the trie of its
/// pair sequences in breadth-first order — the root, then codes 0, 1, 2, ... — as a bit stream, LSB first: per
/// node one bit "has children", and for a node that has, a 9-bit mask of which single-pair extensions are entries
/// (bit s: symbol s, never all zero); padding bits 0. Codes are numbered in that breadth-first order (length
/// ascending, then lexicographic), so the stream alone fixes every entry: 55-61 KB for the dictionaries measured
/// (73,730 bytes with a mask for every node) instead of 524,288 for the [65536, 2] word table. Readers expand it
/// to the word table.
/// </summary>
public static class DictionaryTrieMask
{
    private const int Nodes = CodeDictionary.Size + 1;

    /// <summary>Encodes <paramref name="dict"/>, which must be prefix-closed and in canonical (breadth-first) order.</summary>
    public static byte[] Encode(CodeDictionary dict)
    {
        if (!dict.IsCanonical) throw new ArgumentException("dictionary is not in canonical breadth-first order; use Canonical()");
        // Node of an entry: code c is node c + 1 (the root is node 0); its parent is the entry one pair shorter.
        var index = new Dictionary<ulong, int>();
        for (int c = 0; c < CodeDictionary.Size; c++) index[dict.Key(c)] = c;
        var masks = new int[Nodes];
        for (int c = 0; c < CodeDictionary.Size; c++)
        {
            int n = dict.PairCount(c);
            int node = n == 1 ? 0 : index[dict.Key(c, n - 1)] + 1;
            masks[node] |= 1 << dict.Symbol(c, n - 1);
        }
        long bits = masks.Sum(m => m == 0 ? 1L : 1 + PairModel.Symbols);
        var stream = new byte[(bits + 7) / 8];
        long bit = 0;
        void Put(int value, int width)
        {
            for (int b = 0; b < width; b++, bit++)
                if ((value >> b & 1) != 0) stream[bit >> 3] |= (byte)(1 << (int)(bit & 7));
        }
        foreach (int m in masks)
        {
            Put(m == 0 ? 0 : 1, 1);
            if (m != 0) Put(m, PairModel.Symbols);
        }
        return stream;
    }

    /// <summary>Expands a stored trie, checking that it describes exactly 65,536 entries of 1–14 pairs.</summary>
    public static CodeDictionary Decode(ReadOnlySpan<byte> stream, string where, string? source = null)
    {
        var words = new uint[2 * CodeDictionary.Size];
        long bit = 0, totalBits = 8L * stream.Length;
        int next = 0; // codes assigned so far
        for (int node = 0; node < Nodes; node++)
        {
            if (node > next) throw new QmoeException($"{where}: dictionary trie node {node} is unreachable (only {next} entries)");
            if (bit + 1 > totalBits) throw new QmoeException($"{where}: dictionary trie ends at node {node} of {Nodes}");
            bool inner = (stream[(int)(bit >> 3)] >> (int)(bit & 7) & 1) != 0;
            bit++;
            if (!inner) continue;
            if (bit + PairModel.Symbols > totalBits) throw new QmoeException($"{where}: dictionary trie ends at node {node} of {Nodes}");
            int mask = 0;
            for (int b = 0; b < PairModel.Symbols; b++, bit++) mask |= (stream[(int)(bit >> 3)] >> (int)(bit & 7) & 1) << b;
            if (mask == 0) throw new QmoeException($"{where}: dictionary trie node {node} is marked inner but has no children");
            // A child's words are its parent's with one more pair nibble and the length raised by one.
            uint w0 = node > 0 ? words[2 * (node - 1)] : 0, w1 = node > 0 ? words[2 * (node - 1) + 1] : 0;
            int depth = (int)(w0 & 15);
            for (int s = 0; s < PairModel.Symbols; s++)
            {
                if ((mask >> s & 1) == 0) continue;
                if (depth == CodeDictionary.MaxPairs) throw new QmoeException($"{where}: dictionary trie has an entry longer than 14 pairs");
                if (next == CodeDictionary.Size) throw new QmoeException($"{where}: dictionary trie has more than {CodeDictionary.Size} entries");
                uint nibble = (uint)(s % 3 | (s / 3) << 2);
                words[2 * next] = (w0 & ~15u) + (uint)(depth + 1) | (depth < 7 ? nibble << (4 + 4 * depth) : 0);
                words[2 * next + 1] = w1 | (depth >= 7 ? nibble << (4 + 4 * (depth - 7)) : 0);
                next++;
            }
        }
        if (next != CodeDictionary.Size) throw new QmoeException($"{where}: dictionary trie has {next} entries, expected {CodeDictionary.Size}");
        if ((bit + 7) / 8 != stream.Length) throw new QmoeException($"{where}: dictionary trie has {stream.Length - (bit + 7) / 8} bytes too many");
        for (; bit < totalBits; bit++)
            if ((stream[(int)(bit >> 3)] >> (int)(bit & 7) & 1) != 0) throw new QmoeException($"{where}: dictionary trie has stray padding bits");
        return CodeDictionary.FromValidEntries(words, source ?? where);
    }
}
