namespace Qmoe.Codec;

/// <summary>
/// Trie over a dictionary's pair-symbol sequences for greedy longest-match encoding. Nodes are ints; node 0 is the
/// root; <c>_child[node·S + s]</c> is the child by pair symbol s (S = 9, or 16 for four levels; 0 = none); <c>_code[node]</c> is the entry ending
/// there or −1. A stored dictionary need not be prefix-closed: greedy then falls back to the longest prefix that
/// is an entry, and encoding fails only if some single pair is missing.
/// </summary>
internal sealed class DictionaryTrie
{
    private readonly int[] _child;
    private readonly int[] _code;
    private readonly int _symbols;

    public DictionaryTrie(CodeDictionary dict)
    {
        int maxNodes = 1;
        for (int c = 0; c < CodeDictionary.Size; c++) maxNodes += dict.PairCount(c);
        _symbols = dict.PairSymbols;
        var child = new int[maxNodes * _symbols];
        var code = new int[maxNodes];
        Array.Fill(code, -1);
        int nodes = 1;
        for (int c = 0; c < CodeDictionary.Size; c++)
        {
            int node = 0, n = dict.PairCount(c);
            for (int j = 0; j < n; j++)
            {
                int s = dict.Symbol(c, j);
                ref int next = ref child[node * _symbols + s];
                if (next == 0) next = nodes++;
                node = next;
            }
            if (code[node] < 0) code[node] = c; // duplicates: the lowest code wins
        }
        _child = child.AsSpan(0, nodes * _symbols).ToArray();
        _code = code.AsSpan(0, nodes).ToArray();
        for (int s = 0; s < _symbols; s++)
        {
            int n = _child[s];
            if (n == 0 || _code[n] < 0) { MissingSingle = s; break; }
        }
    }

    /// <summary>Symbols per weight of the dictionary (3 or 4).</summary>
    public int Levels => _symbols == 16 ? 4 : 3;

    /// <summary>A single pair symbol that has no entry (some rows are then not encodable), or −1.</summary>
    public int MissingSingle { get; } = -1;

    /// <summary>
    /// Longest entry matching a prefix of <paramref name="pairs"/> (pair symbols): its code and length in pairs;
    /// length 0 when not even the first pair has an entry.
    /// </summary>
    public (int Code, int Length) Match(ReadOnlySpan<byte> pairs)
    {
        int node = 0, bestCode = -1, bestLen = 0;
        int limit = Math.Min(pairs.Length, CodeDictionary.MaxPairs);
        for (int k = 0; k < limit; k++)
        {
            node = _child[node * _symbols + pairs[k]];
            if (node == 0) break;
            int c = _code[node];
            if (c >= 0) { bestCode = c; bestLen = k + 1; }
        }
        return (bestCode, bestLen);
    }
}
