namespace Qmoe.Text;

/// <summary>
/// SentencePiece BPE segmentation (bpe_model.cc): start from characters (a user-defined piece, longest match,
/// is one frozen symbol), then repeatedly merge the adjacent pair whose concatenation is a piece of highest
/// score, leftmost on ties, until no pair merges. A merged piece of type UNUSED is split back into the parts
/// it was last formed from. A symbol that is no piece becomes a reserved piece of the same text (control,
/// unknown, byte) or the unknown id. Symbols live in a linked list; candidate pairs in a priority queue.
/// </summary>
internal sealed class SentencePieceBpe : IPieceSegmenter
{
    private readonly PieceTrie _pieces;            // normal, user-defined and unused pieces
    private readonly PieceTrie? _userDefined;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _reserved; // control, unknown, byte
    private readonly Dictionary<long, int> _pairs; // (left id, right id) → id of their concatenation
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
        _pairs = [];
        foreach (var (text, id) in entries)
            for (int k = 1; k < text.Length; k++)
            {
                if (char.IsLowSurrogate(text[k]) && char.IsHighSurrogate(text[k - 1])) continue;
                int left = _pieces.Find(text.AsSpan(0, k)), right = _pieces.Find(text.AsSpan(k));
                if (left >= 0 && right >= 0) _pairs[Key(left, right)] = id;
            }
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

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

        while (s.Agenda.TryDequeue(out var pair, out _))
        {
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
        if (s.Id[l] >= 0 && s.Id[r] >= 0) { if (!_pairs.TryGetValue(Key(s.Id[l], s.Id[r]), out merged)) return; }
        else if ((merged = _pieces.Find(text.Slice(s.Start[l], s.Length[l] + s.Length[r]))) < 0) return;
        s.Agenda.Enqueue(new Pair(l, r, s.Length[l] + s.Length[r], merged), (_scores[merged], l));
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

    private readonly record struct Pair(int Left, int Right, int Size, int Merged);

    /// <summary>Highest score first; leftmost first on ties.</summary>
    private sealed class PairOrder : IComparer<(float Score, int Left)>
    {
        public static readonly PairOrder Instance = new();
        public int Compare((float Score, int Left) a, (float Score, int Left) b) =>
            a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left);
    }

    private sealed class Scratch
    {
        public int[] Start = [], Length = [], Prev = [], Next = [], Id = [];
        public bool[] Frozen = [];
        public readonly PriorityQueue<Pair, (float, int)> Agenda = new(PairOrder.Instance);
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
