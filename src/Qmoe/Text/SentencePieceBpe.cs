namespace Qmoe.Text;

/// <summary>
/// SentencePiece BPE segmentation (bpe_model.cc): start from characters (a user-defined piece, longest match,
/// is one frozen symbol), then repeatedly merge the adjacent pair whose concatenation is a piece of highest
/// score, leftmost on ties, until no pair merges. A merged piece of type UNUSED is split back into the parts
/// it was last formed from. A symbol that is no piece becomes a reserved piece of the same text (control,
/// unknown, byte) or the unknown id. Symbols live in a linked list; candidate pairs in a binary heap.
/// </summary>
internal sealed class SentencePieceBpe : IPieceSegmenter
{
    private readonly PieceTrie _pieces;            // normal, user-defined and unused pieces
    private readonly PieceTrie? _userDefined;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved; // control, unknown, byte
    // (left id, right id) → id of their concatenation, as sorted rows per left id (CSR): rights in
    // _pairRight[_pairStart[left] .. _pairStart[left + 1]), ascending, with the merged ids beside them.
    private readonly int[] _pairStart, _pairRight, _pairMerged;
    private readonly float[] _scores;
    private readonly bool[] _unused;
    private readonly int _unkId;

    public SentencePieceBpe(SentencePieceModel model)
    {
        int n = model.Pieces.Count;
        _scores = new float[n];
        _unused = new bool[n];
        var entries = new List<(string, int)>(n);
        var user = new List<(string, int)>();
        var reserved = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < n; id++)
        {
            var p = model.Pieces[id];
            _scores[id] = p.Score;
            _unused[id] = p.Type == SentencePieceModel.PieceType.Unused;
            if (p.Type is SentencePieceModel.PieceType.Normal or SentencePieceModel.PieceType.UserDefined or SentencePieceModel.PieceType.Unused)
                entries.Add((p.Text, id));
            else reserved.TryAdd(p.Text, id);
            if (p.Type == SentencePieceModel.PieceType.UserDefined) user.Add((p.Text, id));
        }
        _pieces = new PieceTrie(entries);
        _userDefined = user.Count > 0 ? new PieceTrie(user) : null;
        _reserved = reserved.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = model.UnkId;
        // Every way of writing a piece as piece + piece (split between whole characters).
        var pairs = new List<(int Left, int Right, int Merged)>();
        foreach (var (text, id) in entries)
        {
            // Walk the prefixes along the trie (linear in the piece's length), then look up each suffix.
            int node = _pieces.Root(text[0]);
            for (int k = 1; k < text.Length && node >= 0; node = _pieces.Child(node, text[k]), k++)
            {
                int left = _pieces.Value(node);
                if (left < 0 || (char.IsLowSurrogate(text[k]) && char.IsHighSurrogate(text[k - 1]))) continue;
                int right = _pieces.Find(text.AsSpan(k));
                if (right >= 0) pairs.Add((left, right, id));
            }
        }
        pairs.Sort();
        _pairStart = new int[n + 1];
        _pairRight = new int[pairs.Count];
        _pairMerged = new int[pairs.Count];
        for (int i = 0; i < pairs.Count; i++)
        {
            _pairStart[pairs[i].Left + 1]++;
            _pairRight[i] = pairs[i].Right;
            _pairMerged[i] = pairs[i].Merged;
        }
        for (int i = 0; i < n; i++) _pairStart[i + 1] += _pairStart[i];
    }

    /// <summary>The id of piece(left) + piece(right), or −1.</summary>
    private int MergedId(int left, int right)
    {
        int lo = _pairStart[left], hi = _pairStart[left + 1] - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1, r = _pairRight[mid];
            if (r == right) return _pairMerged[mid];
            if (r < right) lo = mid + 1; else hi = mid - 1;
        }
        return -1;
    }

    public void Segment(ReadOnlySpan<char> text, PieceSegments output)
    {
        output.Clear();
        int n = text.Length;
        if (n == 0) return;
        var s = t_scratch ??= new Scratch();
        s.Ensure(n);
        int[] start = s.Start, length = s.Length, prev = s.Prev, next = s.Next, id = s.Id;
        bool[] frozen = s.Frozen;
        s.Agenda.Clear();
        s.RevMerge.Clear();

        // Initial symbols: user-defined pieces (frozen) or single characters.
        int count = 0;
        for (int pos = 0; pos < n; count++)
        {
            int len = 0, userId = -1;
            if (_userDefined != null) len = _userDefined.LongestPrefix(text[pos..], out userId);
            frozen[count] = len > 0;
            if (len == 0) len = char.IsHighSurrogate(text[pos]) && pos + 1 < n && char.IsLowSurrogate(text[pos + 1]) ? 2 : 1;
            start[count] = pos; length[count] = len;
            id[count] = userId >= 0 ? userId : _pieces.Find(text.Slice(pos, len));
            prev[count] = count - 1;
            pos += len;
            next[count] = pos < n ? count + 1 : -1;
        }
        for (int i = 1; i < count; i++) MaybeAddPair(text, s, i - 1, i);

        while (s.Agenda.Count > 0)
        {
            var pair = s.Agenda.Pop();
            int l = pair.Left, r = pair.Right;
            // Stale: a side was merged away or grew since the pair was queued.
            if (length[l] == 0 || length[r] == 0 || length[l] + length[r] != pair.Size) continue;
            length[l] += length[r];
            id[l] = pair.Merged;
            next[l] = next[r];
            if (next[r] >= 0) prev[next[r]] = l;
            length[r] = 0;
            MaybeAddPair(text, s, prev[l], l);
            MaybeAddPair(text, s, l, next[l]);
        }

        for (int i = 0; i != -1; i = next[i]) Emit(text, s, start[i], length[i], id[i], output);
    }

    private void MaybeAddPair(ReadOnlySpan<char> text, Scratch s, int l, int r)
    {
        if (l < 0 || r < 0 || s.Frozen[l] || s.Frozen[r]) return;
        int merged;
        merged = s.Id[l] >= 0 && s.Id[r] >= 0 ? MergedId(s.Id[l], s.Id[r]) : _pieces.Find(text.Slice(s.Start[l], s.Length[l] + s.Length[r]));
        if (merged < 0) return;
        s.Agenda.Push(new Pair(l, r, s.Length[l] + s.Length[r], merged, _scores[merged]));
        if (_unused[merged]) s.RevMerge[merged] = s.Length[l];
    }

    /// <summary>Appends a final symbol, splitting an unused piece back into its parts.</summary>
    private void Emit(ReadOnlySpan<char> text, Scratch s, int start, int length, int id, PieceSegments output)
    {
        if (id >= 0 && _unused[id] && s.RevMerge.TryGetValue(id, out int leftLength))
        {
            var left = text.Slice(start, leftLength);
            var right = text.Slice(start + leftLength, length - leftLength);
            Emit(text, s, start, leftLength, _pieces.Find(left), output);
            Emit(text, s, start + leftLength, length - leftLength, _pieces.Find(right), output);
            return;
        }
        if (id < 0 && !_reserved.TryGetValue(text.Slice(start, length), out id)) id = _unkId;
        output.Add(id, start, length);
    }

    private readonly record struct Pair(int Left, int Right, int Size, int Merged, float Score)
    {
        /// <summary>Pops before <paramref name="o"/>: higher score, or equal score and further left.</summary>
        public bool Before(in Pair o) => Score > o.Score || (Score == o.Score && Left < o.Left);
    }

    /// <summary>A binary max-heap of candidate pairs in <see cref="Pair.Before"/> order.</summary>
    private sealed class PairHeap
    {
        private Pair[] _items = new Pair[64];
        public int Count { get; private set; }
        public void Clear() => Count = 0;

        public void Push(in Pair p)
        {
            if (Count == _items.Length) Array.Resize(ref _items, 2 * Count);
            int i = Count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (!p.Before(_items[parent])) break;
                _items[i] = _items[parent];
                i = parent;
            }
            _items[i] = p;
        }

        public Pair Pop()
        {
            var top = _items[0];
            var last = _items[--Count];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= Count) break;
                if (child + 1 < Count && _items[child + 1].Before(_items[child])) child++;
                if (!_items[child].Before(last)) break;
                _items[i] = _items[child];
                i = child;
            }
            if (Count > 0) _items[i] = last;
            return top;
        }
    }

    private sealed class Scratch
    {
        public int[] Start = [], Length = [], Prev = [], Next = [], Id = [];
        public bool[] Frozen = [];
        public readonly PairHeap Agenda = new();
        public readonly Dictionary<int, int> RevMerge = [];

        public void Ensure(int n)
        {
            if (Start.Length >= n) return;
            n = Math.Max(n, 2 * Start.Length);
            Start = new int[n]; Length = new int[n]; Prev = new int[n]; Next = new int[n]; Id = new int[n];
            Frozen = new bool[n];
        }
    }

    [ThreadStatic] private static Scratch? t_scratch;
}
