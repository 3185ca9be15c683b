namespace Qmoe.Text;

/// <summary>
/// SentencePiece unigram segmentation: the piece sequence of maximum total score over normalized text
/// (Viterbi). A character no single-character piece covers becomes the unknown piece, scored
/// min(score) − 10 as SentencePiece does; consecutive unknowns merge into one id.
/// </summary>
internal sealed class UnigramViterbi
{
    private const float UnknownPenalty = 10f;

    // Normal pieces by text; looked up by span to avoid substring allocations.
    private readonly Dictionary<string, (int Id, float Score)>.AlternateLookup<ReadOnlySpan<char>> _pieces;
    private readonly int _maxPieceLength;
    private readonly int _unkId;
    private readonly float _unkScore;

    public UnigramViterbi(SentencePieceModel model)
    {
        var pieces = new Dictionary<string, (int, float)>(StringComparer.Ordinal);
        float minScore = float.MaxValue;
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var p = model.Pieces[id];
            if (p.Type != SentencePieceModel.PieceType.Normal) continue; // control, unknown and unused pieces never match text
            pieces.TryAdd(p.Text, (id, p.Score));
            _maxPieceLength = Math.Max(_maxPieceLength, p.Text.Length);
            minScore = Math.Min(minScore, p.Score);
        }
        _pieces = pieces.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = model.UnkId;
        _unkScore = (minScore == float.MaxValue ? 0 : minScore) - UnknownPenalty;
    }

    /// <summary>Appends the ids of the best segmentation of <paramref name="text"/> (already normalized) to <paramref name="ids"/>.</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> ids)
    {
        int n = text.Length;
        if (n == 0) return;
        // best[e]: best path ending at char e: its score, the piece id of its last piece, where that piece starts.
        var score = new float[n + 1];
        var lastId = new int[n + 1];
        var start = new int[n + 1];
        Array.Fill(start, -1);
        start[0] = 0;
        for (int s = 0; s < n; s++)
        {
            if (start[s] < 0) continue; // inside a surrogate pair: no path ends here
            int charLength = char.IsHighSurrogate(text[s]) && s + 1 < n && char.IsLowSurrogate(text[s + 1]) ? 2 : 1;
            bool singleCharPiece = false;
            for (int len = 1; len <= _maxPieceLength && s + len <= n; len++)
            {
                if (!_pieces.TryGetValue(text.Slice(s, len), out var piece)) continue;
                if (len == charLength) singleCharPiece = true;
                Relax(s, s + len, piece.Id, (double)piece.Score + score[s]);
            }
            if (!singleCharPiece) Relax(s, s + charLength, _unkId, _unkScore + score[s]);
        }

        // Backtrack, then emit in order, merging runs of unknowns.
        var path = new List<int>();
        for (int e = n; e > 0; e = start[e]) path.Add(lastId[e]);
        for (int i = path.Count - 1; i >= 0; i--)
        {
            if (path[i] == _unkId && i < path.Count - 1 && path[i + 1] == _unkId) continue;
            ids.Add(path[i]);
        }

        // Exact ties are common (e.g. "mm"+"m" vs "m"+"mm"); SentencePiece breaks them by summing a piece
        // score in double onto the float path score and comparing that with the stored float, so do the same.
        void Relax(int s, int e, int id, double candidate)
        {
            if (start[e] < 0 || candidate > score[e]) { score[e] = (float)candidate; lastId[e] = id; start[e] = s; }
        }
    }
}
