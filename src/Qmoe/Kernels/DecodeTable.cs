namespace Qmoe.Kernels;

/// <summary>
/// The dict16 dictionary (SPEC §5: U32 [65536, 2], word = pairs packed 4 bits each (bits 0–1 first trit,
/// bits 2–3 second) shifted left by 4, OR the sequence length in pairs; word0 holds pairs 0..6, word1 pairs
/// 7..13) re-laid out at load time for fused decoding: one 64-bit entry per codeword, trit k of the sequence
/// (0..27; 0 zero, 1 the row min, 2 the row max) in bits 2k..2k+1, zero past its length, and the length in
/// weights at <see cref="LengthShift"/>.
/// </summary>
public sealed class DecodeTable
{
    public const int Size = 65536;
    /// <summary>Most weights one codeword covers (14 pairs).</summary>
    public const int MaxWeights = 28;

    /// <summary>Bit position of the length in weights in an entry.</summary>
    public const int LengthShift = 56;

    /// <summary>[65536] entries as described above.</summary>
    public ulong[] Entries { get; }

    /// <summary>Symbols per weight: 3 (ternary) or 4 (a coded 2-bit expert's dictionary).</summary>
    public int Levels { get; }

    private DecodeTable(ulong[] entries, int levels) { Entries = entries; Levels = levels; }

    /// <summary>Sequence length in pairs (1..14) of a SPEC dictionary word.</summary>
    public static int Pairs(uint word0) => (int)(word0 & 15);

    /// <summary>Trit k (0..27) of a codeword from its two SPEC dictionary words.</summary>
    public static int Trit(uint word0, uint word1, int k) =>
        (int)(((k < 14 ? word0 : word1) >> (4 + 2 * (k % 14))) & 3);

    /// <summary>The table of <paramref name="dictionary"/>, ternary or four-level as it is.</summary>
    public static DecodeTable FromDictionary(Codec.CodeDictionary dictionary) => FromDictionary(dictionary.Entries, dictionary.Levels);

    /// <summary>Builds the table from the file's dictionary; refuses entries of bad length, or with trit value 3 unless
    /// the dictionary has four levels (<paramref name="levels"/> = 4: a coded 2-bit expert's symbols 0..3).</summary>
    public static DecodeTable FromDictionary(ReadOnlySpan<uint> dictionary, int levels = 3)
    {
        if (levels is not (3 or 4)) throw new ArgumentOutOfRangeException(nameof(levels), levels, "3 or 4 levels");
        if (dictionary.Length != 2 * Size)
            throw new QmoeException($"qmoe.dictionary: {dictionary.Length} words, expected [65536, 2] = {2 * Size}");
        var entries = new ulong[Size];
        for (int c = 0; c < Size; c++)
        {
            uint w0 = dictionary[2 * c], w1 = dictionary[2 * c + 1];
            int pairs = Pairs(w0);
            if (pairs < 1 || pairs > 14) throw new QmoeException($"qmoe.dictionary: entry {c} has length {pairs}, expected 1..14 pairs");
            ulong entry = (ulong)(2 * pairs) << LengthShift;
            for (int k = 0; k < 2 * pairs; k++)
            {
                int t = Trit(w0, w1, k);
                if (t >= levels) throw new QmoeException($"qmoe.dictionary: entry {c} holds the invalid trit value {t} at weight {k}");
                entry |= (ulong)t << (2 * k);
            }
            entries[c] = entry;
        }
        return new DecodeTable(entries, levels);
    }
}
