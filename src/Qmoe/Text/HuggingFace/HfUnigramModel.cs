using System.Text;
using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// Hugging Face's Unigram model (<c>encode_optimized</c>): the segmentation of highest total score (scores in double),
/// lengths tried shortest first with a strictly-greater update; a character no single piece covers is the unknown
/// token scored min(score) − 10; consecutive unknowns fuse into one string, which becomes its <c>&lt;0xXX&gt;</c> byte
/// pieces (<c>byte_fallback</c>) or the unknown id. Separate from <see cref="UnigramViterbi"/> because SentencePiece
/// adds float scores and treats control pieces differently. Empty pieces are never matched (Hugging Face would loop).
/// Immutable and thread-safe.
/// </summary>
internal sealed class HfUnigramModel : IHfModel
{
    private const double UnknownPenalty = 10.0;
    private readonly string[] _tokens;
    private readonly double[] _scores;
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int _maxLength;
    private readonly double _unkScore;
    private readonly bool _byteFallback;
    private readonly WordCache _cache = new(1 << 16);

    public string Kind => "hf-unigram";
    public int Count => _tokens.Length;
    public int IdLimit => _tokens.Length;
    public int? UnkId { get; }

    private HfUnigramModel(string[] tokens, double[] scores, int? unkId, bool byteFallback)
    {
        _tokens = tokens;
        _scores = scores;
        _ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) _ids[tokens[i]] = i; // a repeated piece keeps its last id
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        _maxLength = tokens.Length == 0 ? 0 : tokens.Max(t => t.Length);
        _unkScore = (scores.Length == 0 ? double.PositiveInfinity : scores.Min()) - UnknownPenalty;
        UnkId = unkId;
        _byteFallback = byteFallback;
    }

    public static HfUnigramModel Parse(HfJson json, JsonElement model, string path)
    {
        var vocab = json.Array(json.Required(model, path, "vocab"), path + ".vocab");
        int n = vocab.GetArrayLength();
        var tokens = new string[n];
        var scores = new double[n];
        int i = 0;
        foreach (var entry in vocab.EnumerateArray())
        {
            string p = $"{path}.vocab[{i}]";
            if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() != 2) throw json.Error(p, "expected [piece, score]");
            tokens[i] = json.String(entry[0], p + "[0]");
            scores[i] = json.Double(entry[1], p + "[1]");
            i++;
        }
        int? unkId = HfJson.Optional(model, "unk_id") is { } u ? json.Int(u, path + ".unk_id", Math.Max(n, 1)) : null;
        if (unkId != null && n == 0) throw json.Error(path + ".vocab", "empty vocabulary with an unk_id");
        return new HfUnigramModel(tokens, scores, unkId, json.OptionalBool(model, path, "byte_fallback", false));
    }

    public int? TokenToId(string token) => _ids.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_tokens.Length ? _tokens[id] : null;

    public void Tokenize(string piece, List<int> ids)
    {
        if (_cache.TryGet(piece, out var cached)) { ids.AddRange(cached); return; }
        var result = new List<int>();
        Encode(piece, result);
        var array = result.ToArray();
        ids.AddRange(array);
        _cache.Add(piece, array);
    }

    private void Encode(string s, List<int> ids)
    {
        int n = s.Length;
        var score = new double[n + 1];
        var startsAt = new int[n + 1];
        var nodeId = new int[n + 1];
        Array.Fill(startsAt, -1);
        for (int start = 0; start < n;)
        {
            int charLength = char.IsHighSurrogate(s[start]) && start + 1 < n && char.IsLowSurrogate(s[start + 1]) ? 2 : 1;
            double here = score[start];
            bool single = false;
            for (int len = 1; len <= _maxLength && start + len <= n; len++)
            {
                if (!_lookup.TryGetValue(s.AsSpan(start, len), out int id)) continue;
                Relax(start + len, id, _scores[id] + here);
                if (len == charLength) single = true;
            }
            if (!single)
            {
                int unk = UnkId ?? throw new QmoeException(HfJson.Printable($"tokenizer.json: unigram model has no unk_id and no piece for '{s.Substring(start, charLength)}'"));
                Relax(start + charLength, unk, _unkScore + here);
            }
            start += charLength;

            void Relax(int end, int id, double candidate)
            {
                if (startsAt[end] < 0 || candidate > score[end]) { score[end] = candidate; startsAt[end] = start; nodeId[end] = id; }
            }
        }

        // Backtrack into strings (unknown runs fused), then map each string to its id(s).
        var pieces = new List<(int Start, int End)>();
        int fusedEnd = -1;
        for (int end = n; end > 0;)
        {
            int start = startsAt[end];
            if (nodeId[end] == UnkId)
            {
                if (fusedEnd < 0) fusedEnd = end;
            }
            else
            {
                if (fusedEnd >= 0) { pieces.Add((end, fusedEnd)); fusedEnd = -1; }
                pieces.Add((start, end));
            }
            end = start;
        }
        if (fusedEnd >= 0) pieces.Add((0, fusedEnd));
        for (int k = pieces.Count - 1; k >= 0; k--)
        {
            var (a, b) = pieces[k];
            if (_lookup.TryGetValue(s.AsSpan(a, b - a), out int id)) { ids.Add(id); continue; }
            if (_byteFallback && TryBytes(s.AsSpan(a, b - a), ids)) continue;
            ids.Add(UnkId ?? throw new QmoeException("tokenizer.json: unigram model has no unk_id"));
        }
    }

    private bool TryBytes(ReadOnlySpan<char> text, List<int> ids)
    {
        var bytes = Encoding.UTF8.GetBytes(text.ToArray());
        var found = new int[bytes.Length];
        for (int k = 0; k < bytes.Length; k++)
            if (!_ids.TryGetValue($"<0x{bytes[k]:X2}>", out found[k])) return false;
        ids.AddRange(found);
        return true;
    }
}
