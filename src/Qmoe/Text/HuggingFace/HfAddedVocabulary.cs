using System.Text;
using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>An entry of <c>tokenizer.json</c>'s <c>added_tokens</c>, with the id Hugging Face gives it.</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord);

/// <summary>
/// Hugging Face's AddedVocabulary: tokens found in the text before the model sees it. Non-normalized tokens are
/// matched in the raw text, normalized ones (as the normalizer rewrites them) in each normalized piece; both
/// leftmost-longest. <c>single_word</c> tokens need no word character (<c>\w</c>) on either side; <c>lstrip</c> /
/// <c>rstrip</c> take the whitespace beside the match into the token. Ids follow Hugging Face's <c>add_tokens</c>:
/// the model's id for a content it has, else the next id from the model's size (file ids are not used).
/// </summary>
internal sealed class HfAddedVocabulary
{
    private readonly Dictionary<string, int> _idByContent = new(StringComparer.Ordinal);
    private readonly SortedDictionary<int, AddedToken> _byId = new();
    private readonly Dictionary<int, string> _normalizedContent = new();
    private readonly HashSet<string> _specialContents = new(StringComparer.Ordinal);
    private readonly LeftmostLongestMatcher? _raw, _normalized;

    public IReadOnlyList<AddedToken> Tokens { get; }
    public int IdLimit => _byId.Count == 0 ? 0 : _byId.Keys.Max() + 1;

    public HfAddedVocabulary(HfJson json, JsonElement? element, IHfModel model, IHfNormalizer? normalizer)
    {
        if (element is { } e)
        {
            json.Array(e, "added_tokens");
            int nextId = model.Count;
            int i = 0;
            foreach (var t in e.EnumerateArray())
            {
                string p = $"added_tokens[{i++}]";
                json.Object(t, p);
                json.Int(json.Required(t, p, "id"), p + ".id");
                string content = json.String(json.Required(t, p, "content"), p + ".content");
                bool special = json.OptionalBool(t, p, "special", false);
                var token = new AddedToken(0, content, special, json.OptionalBool(t, p, "normalized", !special),
                    json.OptionalBool(t, p, "lstrip", false), json.OptionalBool(t, p, "rstrip", false), json.OptionalBool(t, p, "single_word", false));
                if (content.Length == 0) continue;
                if (_idByContent.TryGetValue(content, out int existing) && _byId[existing] == token with { Id = existing }) continue;
                int id = _idByContent.TryGetValue(content, out existing) ? existing : model.TokenToId(content) ?? nextId++;
                token = token with { Id = id };
                if (token.Normalized && normalizer != null)
                {
                    string normalized = normalizer.Normalize(content);
                    if (normalized != content) _normalizedContent[id] = normalized;
                }
                _idByContent[content] = id;
                if (special) _specialContents.Add(content);
                _byId[id] = token;
            }
        }
        Tokens = _byId.Values.ToList();
        var raw = new List<(string, int)>();
        var norm = new List<(string, int)>();
        foreach (var (id, token) in _byId)
        {
            if (token.Normalized) norm.Add((_normalizedContent.GetValueOrDefault(id, token.Content), id));
            else raw.Add((token.Content, id));
        }
        _raw = raw.Count > 0 ? new LeftmostLongestMatcher(raw, m => json.Error("added_tokens", m)) : null;
        _normalized = norm.Count > 0 ? new LeftmostLongestMatcher(norm, m => json.Error("added_tokens", m)) : null;
    }

    public int? TokenToId(string content) => _idByContent.TryGetValue(content, out int id) ? id : null;

    /// <summary>The text an added id decodes to (the normalized content for normalized tokens), or null.</summary>
    public string? IdToToken(int id) =>
        _byId.TryGetValue(id, out var t) ? _normalizedContent.GetValueOrDefault(id, t.Content) : null;

    public bool IsSpecial(string token) => _specialContents.Contains(token);

    public AddedToken? Token(int id) => _byId.GetValueOrDefault(id);

    /// <summary>First pass: cuts <paramref name="text"/> at non-normalized added tokens.</summary>
    public void SplitRaw(string text, List<HfPiece> output) => Split(_raw, new HfPiece(text, -1, true), output);

    /// <summary>True when no added token is matched in raw text (the first pass can be skipped).</summary>
    public bool HasRaw => _raw != null;

    /// <summary>Second pass: cuts an already normalized piece at normalized added tokens.</summary>
    public void SplitNormalized(HfPiece piece, List<HfPiece> output) => Split(_normalized, piece, output);

    private void Split(LeftmostLongestMatcher? matcher, HfPiece piece, List<HfPiece> output)
    {
        string s = piece.Text;
        if (matcher == null || s.Length == 0)
        {
            if (s.Length > 0) output.Add(piece);
            return;
        }
        int startOffset = 0;
        for (int from = 0; matcher.Next(s, from) is (int matchStart, int matchEnd, int id); from = matchEnd)
        {
            var token = _byId[id];
            int start = matchStart, stop = matchEnd;
            if (token.SingleWord)
            {
                bool startSpace = start == 0 || !EndsWithWord(s, start);
                bool stopSpace = stop == s.Length || !StartsWithWord(s, stop);
                if (!startSpace || !stopSpace) continue;
            }
            if (token.LStrip)
            {
                int newStart = start;
                while (newStart > 0 && char.IsWhiteSpace(s[newStart - 1])) newStart--;
                start = Math.Max(newStart, startOffset);
            }
            if (token.RStrip) while (stop < s.Length && char.IsWhiteSpace(s[stop])) stop++;
            if (startOffset < start) Add(startOffset, start, -1);
            Add(start, stop, id);
            startOffset = stop;
        }
        if (startOffset < s.Length) Add(startOffset, s.Length, -1);

        void Add(int a, int b, int id)
        {
            // rstrip may reach past the next match's start; Hugging Face then slices overlapping pieces, as here.
            if (b <= a) return;
            output.Add(new HfPiece(a == 0 && b == s.Length ? s : s[a..b], id, piece.AtOrigin && a == 0));
        }
    }

    private static bool EndsWithWord(string s, int end) =>
        end > 0 && Rune.DecodeLastFromUtf16(s.AsSpan(0, end), out var r, out _) == System.Buffers.OperationStatus.Done && RustWordChar.IsWord(r);

    private static bool StartsWithWord(string s, int start) =>
        start < s.Length && Rune.DecodeFromUtf16(s.AsSpan(start), out var r, out _) == System.Buffers.OperationStatus.Done && RustWordChar.IsWord(r);

    /// <summary>Leftmost-longest matching of a fixed set of patterns (a trie walked from each position).</summary>
    private sealed class LeftmostLongestMatcher
    {
        private sealed class Node
        {
            public Dictionary<char, Node>? Children;
            public int Value = -1;
        }

        private readonly Node _root = new();
        private readonly bool[] _firstChar = new bool[65536];

        public LeftmostLongestMatcher(List<(string Pattern, int Id)> patterns, Func<string, QmoeException> fail)
        {
            foreach (var (pattern, id) in patterns)
            {
                if (pattern.Length == 0) throw fail($"token {id} normalizes to an empty string");
                var node = _root;
                foreach (char c in pattern)
                {
                    node.Children ??= new Dictionary<char, Node>();
                    if (!node.Children.TryGetValue(c, out var child)) node.Children[c] = child = new Node();
                    node = child;
                }
                if (node.Value >= 0) throw fail($"tokens {node.Value} and {id} match the same text \"{pattern}\"");
                node.Value = id;
                _firstChar[pattern[0]] = true;
            }
        }

        /// <summary>The leftmost match at or after <paramref name="from"/>, longest among those starting there.</summary>
        public (int Start, int End, int Id)? Next(string s, int from)
        {
            for (int i = from; i < s.Length; i++)
            {
                if (!_firstChar[s[i]]) continue;
                Node? node = _root;
                int bestEnd = -1, bestId = -1;
                for (int j = i; j < s.Length && node.Children != null && node.Children.TryGetValue(s[j], out node); j++)
                {
                    if (node.Value >= 0) { bestEnd = j + 1; bestId = node.Value; }
                }
                if (bestEnd >= 0) return (i, bestEnd, bestId);
            }
            return null;
        }
    }
}
