namespace Qmoe.Codec;

/// <summary>
/// The compact stored form of a prefix-closed dictionary (format v2, <c>qmoe.dictionary_trie</c>): the trie of its
/// pair sequences in breadth-first order — the root, then codes 0, 1, 2, ... — each node a 9-bit mask of which
/// single-pair extensions are entries (bit s: symbol s), packed LSB first. Codes are numbered in that breadth-first
/// order (length ascending, then lexicographic), so the mask alone fixes every entry: 65,537 × 9 bits = 73,730
/// bytes instead of 524,288 for the [65536, 2] word table (0.13 → 0.018 bits per parameter on a 33.6M-parameter
/// model). Readers expand it to the word table.
/// </summary>
public static class DictionaryTrieMask
{
    public const int Bytes = ((CodeDictionary.Size + 1) * PairModel.Symbols + 7) / 8;

    /// <summary>Encodes <paramref name="dict"/>, which must be prefix-closed and in canonical (breadth-first) order.</summary>
    public static byte[] Encode(CodeDictionary dict)
    {
        if (!dict.IsCanonical) throw new ArgumentException("dictionary is not in canonical breadth-first order; use Canonical()");
        // Node of an entry: code c is node c + 1 (the root is node 0); its parent is the entry one pair shorter.
        var index = new Dictionary<ulong, int>();
        for (int c = 0; c < CodeDictionary.Size; c++) index[dict.Key(c)] = c;
        var mask = new byte[Bytes];
        for (int c = 0; c < CodeDictionary.Size; c++)
        {
            int n = dict.PairCount(c);
            int node = n == 1 ? 0 : index[dict.Key(c, n - 1)] + 1;
            int bit = node * PairModel.Symbols + dict.Symbol(c, n - 1);
            mask[bit >> 3] |= (byte)(1 << (bit & 7));
        }
        return mask;
    }

    /// <summary>Expands a stored mask, checking that it describes exactly 65,536 entries of 1–14 pairs.</summary>
    public static CodeDictionary Decode(ReadOnlySpan<byte> mask, string where, string? source = null)
    {
        if (mask.Length != Bytes) throw new QmoeException($"{where}: dictionary trie has {mask.Length} bytes, expected {Bytes}");
        var words = new uint[2 * CodeDictionary.Size];
        int next = 0; // codes assigned so far
        for (int node = 0; node <= CodeDictionary.Size; node++)
        {
            if (node > next) throw new QmoeException($"{where}: dictionary trie node {node} is unreachable (only {next} entries)");
            // A child's words are its parent's with one more pair nibble and the length raised by one.
            uint w0 = node > 0 ? words[2 * (node - 1)] : 0, w1 = node > 0 ? words[2 * (node - 1) + 1] : 0;
            int depth = (int)(w0 & 15);
            for (int s = 0; s < PairModel.Symbols; s++)
            {
                int bit = node * PairModel.Symbols + s;
                if ((mask[bit >> 3] >> (bit & 7) & 1) == 0) continue;
                if (depth == CodeDictionary.MaxPairs) throw new QmoeException($"{where}: dictionary trie has an entry longer than 14 pairs");
                if (next == CodeDictionary.Size) throw new QmoeException($"{where}: dictionary trie has more than {CodeDictionary.Size} entries");
                uint nibble = (uint)(s % 3 | (s / 3) << 2);
                words[2 * next] = (w0 & ~15u) + (uint)(depth + 1) | (depth < 7 ? nibble << (4 + 4 * depth) : 0);
                words[2 * next + 1] = w1 | (depth >= 7 ? nibble << (4 + 4 * (depth - 7)) : 0);
                next++;
            }
        }
        if (next != CodeDictionary.Size) throw new QmoeException($"{where}: dictionary trie has {next} entries, expected {CodeDictionary.Size}");
        for (int bit = (CodeDictionary.Size + 1) * PairModel.Symbols; bit < 8 * Bytes; bit++)
            if ((mask[bit >> 3] >> (bit & 7) & 1) != 0) throw new QmoeException($"{where}: dictionary trie has stray padding bits");
        return CodeDictionary.FromValidEntries(words, source ?? where);
    }
}
