namespace Qmoe.Text;

/// <summary>
/// SentencePiece unigram segmentation: the piece sequence of maximum total score over normalized text
/// (Viterbi over a common-prefix search of the piece trie). User-defined pieces score
/// length(UTF-8 bytes) · max(normal score) − 0.1 so that they win, unused pieces never match, and a
/// character no single-character piece covers becomes the unknown piece, scored min(score) − 10, as
/// SentencePiece does.
/// </summary>
internal sealed class UnigramViterbi : IPieceSegmenter
{
    private const float UnknownPenalty = 10f;

    private readonly PieceTrie _trie;        // normal and user-defined pieces
    private readonly float[] _scores;        // by id; user-defined pieces: their bonus per UTF-8 byte is applied at match time
    private readonly bool[] _userDefined;
    private readonly float _maxScore;
    private readonly int _unkId;
    private readonly float _unkScore;

    public UnigramViterbi(SentencePieceModel model)
    {
        int n = model.Pieces.Count;
        _scores = new float[n];
        _userDefined = new bool[n];
        var entries = new List<(string, int)>(n);
        float minScore = float.MaxValue, maxScore = 1.17549435e-38f; // SentencePiece starts max at FLT_MIN; kept for parity
        for (int id = 0; id < n; id++)
        {
            var p = model.Pieces[id];
            _scores[id] = p.Score;
            if (p.Type == SentencePieceModel.PieceType.Normal)
            {
                minScore = Math.Min(minScore, p.Score);
                maxScore = Math.Max(maxScore, p.Score);
            }
            if (p.Type is SentencePieceModel.PieceType.Normal or SentencePieceModel.PieceType.UserDefined) entries.Add((p.Text, id));
            _userDefined[id] = p.Type == SentencePieceModel.PieceType.UserDefined;
        }
        _trie = new PieceTrie(entries);
        _maxScore = maxScore;
        _unkId = model.UnkId;
        _unkScore = (minScore == float.MaxValue ? 0 : minScore) - UnknownPenalty;
    }

    public void Segment(ReadOnlySpan<char> text, PieceSegments output)
    {
        output.Clear();
        int n = text.Length;
        if (n == 0) return;
        var scratch = t_scratch ??= new Scratch();
        scratch.Ensure(n + 1);
        // For each end position e: the best path's score, its last piece's id and start (−1: no path ends here).
        float[] score = scratch.Score;
        int[] lastId = scratch.LastId, start = scratch.Start;
        start.AsSpan(0, n + 1).Fill(-1);
        start[0] = 0; score[0] = 0;
        for (int s = 0; s < n; s++)
        {
            if (start[s] < 0) continue; // inside a surrogate pair: no path ends here
            float here = score[s];
            int charLength = char.IsHighSurrogate(text[s]) && s + 1 < n && char.IsLowSurrogate(text[s + 1]) ? 2 : 1;
            bool singleCharPiece = false;
            int node = _trie.Root(text[s]);
            for (int e = s + 1; node >= 0; e++)
            {
                int id = _trie.Value(node);
                if (id >= 0)
                {
                    int len = e - s;
                    if (len == charLength) singleCharPiece = true;
                    // SentencePiece sums the piece score in double onto the float path score and compares with the
                    // stored float; exact ties (e.g. "mm"+"m" vs "m"+"mm") break the same way only if we do too.
                    double pieceScore = _userDefined[id] ? Utf8Length(text.Slice(s, len)) * _maxScore - 0.1 : _scores[id];
                    double candidate = pieceScore + here;
                    if (start[e] < 0 || candidate > score[e]) { score[e] = (float)candidate; lastId[e] = id; start[e] = s; }
                }
                if (e == n) break;
                node = _trie.Child(node, text[e]);
            }
            if (!singleCharPiece)
            {
                int e = s + charLength;
                float candidate = _unkScore + here;
                if (start[e] < 0 || candidate > score[e]) { score[e] = candidate; lastId[e] = -1; start[e] = s; }
            }
        }
        for (int e = n; e > 0; e = start[e]) output.Add(lastId[e] < 0 ? _unkId : lastId[e], start[e], e - start[e]);
        output.Reverse();
    }

    private static int Utf8Length(ReadOnlySpan<char> s) => System.Text.Encoding.UTF8.GetByteCount(s);

    private sealed class Scratch
    {
        public float[] Score = [];
        public int[] LastId = [], Start = [];
        public void Ensure(int n)
        {
            if (Score.Length >= n) return;
            n = Math.Max(n, 2 * Score.Length);
            Score = new float[n]; LastId = new int[n]; Start = new int[n];
        }
    }

    [ThreadStatic] private static Scratch? t_scratch;
}
