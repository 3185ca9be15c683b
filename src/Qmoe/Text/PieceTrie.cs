namespace Qmoe.Text;

/// <summary>
/// A read-only trie over the UTF-16 text of vocabulary pieces, for common-prefix search (unigram lattice,
/// user-defined piece matching). Children are stored per node as a sorted label range (CSR layout); the root
/// has a direct 65536-entry table since every search starts there. Value −1 = no piece ends at the node.
/// </summary>
internal sealed class PieceTrie
{
    private readonly int[] _rootChild;     // [65536] child of the root per char, or −1
    private readonly int[] _firstChild;    // [nodes + 1] start of each node's children in _labels/_children
    private readonly char[] _labels;       // sorted within each node's range
    private readonly int[] _children;
    private readonly int[] _values;        // [nodes] piece id ending here, or −1

    /// <summary>Length in chars of the longest key.</summary>
    public int MaxKeyLength { get; }
    public int KeyCount { get; }

    public PieceTrie(IEnumerable<(string Key, int Value)> entries)
    {
        // Build with a dictionary of edges, then lay the nodes out breadth-first with sorted children.
        var edges = new Dictionary<(int, char), int>();
        var values = new List<int> { -1 };
        var childLists = new List<List<char>?> { null };
        int maxLength = 0, count = 0;
        foreach (var (key, value) in entries)
        {
            if (key.Length == 0) continue;
            int node = 0;
            foreach (char c in key)
            {
                if (!edges.TryGetValue((node, c), out int child))
                {
                    child = values.Count;
                    values.Add(-1);
                    childLists.Add(null);
                    edges[(node, c)] = child;
                    (childLists[node] ??= []).Add(c);
                }
                node = child;
            }
            if (values[node] < 0) { values[node] = value; count++; }
            maxLength = Math.Max(maxLength, key.Length);
        }
        MaxKeyLength = maxLength;
        KeyCount = count;

        int n = values.Count;
        var order = new int[n];        // new index of each old node
        var queue = new List<int>(n) { 0 };
        for (int head = 0; head < queue.Count; head++)
        {
            int old = queue[head];
            order[old] = head;
            if (childLists[old] is { } list)
            {
                list.Sort();
                foreach (char c in list) queue.Add(edges[(old, c)]);
            }
        }
        _firstChild = new int[n + 1];
        _labels = new char[n - 1 < 0 ? 0 : n - 1];
        _children = new int[_labels.Length];
        _values = new int[n];
        int next = 0;
        for (int i = 0; i < n; i++)
        {
            int old = queue[i];
            _values[i] = values[old];
            _firstChild[i] = next;
            if (childLists[old] is { } list)
                foreach (char c in list) { _labels[next] = c; _children[next] = order[edges[(old, c)]]; next++; }
        }
        _firstChild[n] = next;
        _rootChild = new int[65536];
        Array.Fill(_rootChild, -1);
        for (int k = _firstChild[0]; k < _firstChild[1]; k++) _rootChild[_labels[k]] = _children[k];
    }

    /// <summary>The node reached from the root by <paramref name="c"/>, or −1.</summary>
    public int Root(char c) => _rootChild[c];

    /// <summary>The node reached from <paramref name="node"/> by <paramref name="c"/>, or −1.</summary>
    public int Child(int node, char c)
    {
        int lo = _firstChild[node], hi = _firstChild[node + 1] - 1;
        if (hi - lo < 8)
        {
            for (int k = lo; k <= hi; k++) if (_labels[k] == c) return _children[k];
            return -1;
        }
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            char l = _labels[mid];
            if (l == c) return _children[mid];
            if (l < c) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }

    /// <summary>The piece id ending at <paramref name="node"/>, or −1.</summary>
    public int Value(int node) => _values[node];

    /// <summary>The id of exactly <paramref name="key"/>, or −1.</summary>
    public int Find(ReadOnlySpan<char> key)
    {
        if (key.IsEmpty) return -1;
        int node = _rootChild[key[0]];
        for (int i = 1; i < key.Length && node >= 0; i++) node = Child(node, key[i]);
        return node < 0 ? -1 : _values[node];
    }

    /// <summary>A trie over UTF-8 byte strings: each key's bytes become chars 0–255 (see <see cref="LongestPrefix(ReadOnlySpan{byte}, out int)"/>).</summary>
    public static PieceTrie OverUtf8(IEnumerable<(string Key, int Value)> entries) =>
        new(entries.Select(e => (new string(System.Text.Encoding.UTF8.GetBytes(e.Key).Select(b => (char)b).ToArray()), e.Value)));

    /// <summary>Longest key of a <see cref="OverUtf8"/> trie that is a prefix of <paramref name="bytes"/>: its length in bytes (0 if none) and id.</summary>
    public int LongestPrefix(ReadOnlySpan<byte> bytes, out int id)
    {
        id = -1;
        int best = 0;
        if (bytes.IsEmpty) return 0;
        int node = _rootChild[bytes[0]];
        for (int i = 1; node >= 0; i++)
        {
            if (_values[node] >= 0) { best = i; id = _values[node]; }
            if (i == bytes.Length) break;
            node = Child(node, (char)bytes[i]);
        }
        return best;
    }

    /// <summary>Whether any key of a <see cref="OverUtf8"/> trie starts with byte <paramref name="b"/>.</summary>
    public bool AnyKeyStartsWith(byte b) => _rootChild[b] >= 0;

    /// <summary>Length of the longest key that is a prefix of <paramref name="text"/> (0 if none), and its id.</summary>
    public int LongestPrefix(ReadOnlySpan<char> text, out int id)
    {
        id = -1;
        int best = 0;
        if (text.IsEmpty) return 0;
        int node = _rootChild[text[0]];
        for (int i = 1; node >= 0; i++)
        {
            if (_values[node] >= 0) { best = i; id = _values[node]; }
            if (i == text.Length) break;
            node = Child(node, text[i]);
        }
        return best;
    }
}
