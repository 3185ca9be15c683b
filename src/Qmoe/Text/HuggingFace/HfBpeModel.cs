using System.Text;
using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// Hugging Face's BPE model: each character (with <c>continuing_subword_prefix</c> when not first and
/// <c>end_of_word_suffix</c> when last) becomes its vocabulary id, or its UTF-8 bytes as <c>&lt;0xXX&gt;</c> pieces
/// (<c>byte_fallback</c>), or the unknown token (runs fused with <c>fuse_unk</c>), or is dropped when there is none;
/// then merges apply lowest rank first, leftmost first among equal ranks, exactly as <c>Word::merge_all</c> does
/// (including its staleness test, which compares only the merged id). <c>ignore_merges</c> takes a piece that is
/// itself in the vocabulary whole. Dropout must be null or 0. Immutable and thread-safe (a bounded word cache).
/// </summary>
internal sealed class HfBpeModel : IHfModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly string?[] _idToToken;
    private readonly Dictionary<long, int> _mergeRank; // (left id, right id) → rank
    private readonly int[] _rankNewId;                  // rank → merged id
    private readonly int[]? _byteIds;                   // byte → id of "<0xXX>" (-1 when absent); null without byte fallback
    private readonly int[] _smallCharIds;               // char < 0x200 → id of that one-character token (-1), when no prefix/suffix
    private readonly string? _prefix, _suffix;
    private readonly bool _fuseUnk, _ignoreMerges;
    private readonly WordCache _cache = new(1 << 16);

    public string Kind => "hf-bpe";
    public int Count => _vocab.Count;
    public int IdLimit => _idToToken.Length;
    public int? UnkId { get; }

    private HfBpeModel(Dictionary<string, int> vocab, string?[] idToToken, Dictionary<long, int> mergeRank, int[] rankNewId,
        int? unkId, bool byteFallback, bool fuseUnk, bool ignoreMerges, string? prefix, string? suffix)
    {
        _vocab = vocab;
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _idToToken = idToToken;
        _mergeRank = mergeRank;
        _rankNewId = rankNewId;
        UnkId = unkId;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
        _prefix = string.IsNullOrEmpty(prefix) ? null : prefix;
        _suffix = string.IsNullOrEmpty(suffix) ? null : suffix;
        if (byteFallback)
        {
            _byteIds = new int[256];
            for (int b = 0; b < 256; b++) _byteIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
        }
        _smallCharIds = new int[0x200];
        for (int c = 0; c < _smallCharIds.Length; c++) _smallCharIds[c] = vocab.TryGetValue(((char)c).ToString(), out int id) ? id : -1;
    }

    public static HfBpeModel Parse(HfJson json, JsonElement model, string path, long fileLength)
    {
        if (HfJson.Optional(model, "dropout") is { } d && json.Double(d, path + ".dropout") != 0)
            throw json.Unsupported(path + ".dropout", "BPE dropout (non-deterministic encoding)");
        var vocab = HfVocabulary.ParseMap(json, json.Required(model, path, "vocab"), path + ".vocab", fileLength, out var idToToken);

        var mergesElement = json.Array(json.Required(model, path, "merges"), path + ".merges");
        int mergeCount = mergesElement.GetArrayLength();
        var mergeRank = new Dictionary<long, int>(mergeCount, PairComparer.Instance);
        var rankNewId = new int[mergeCount];
        string? prefix = json.OptionalString(model, path, "continuing_subword_prefix");
        int prefixBytes = Encoding.UTF8.GetByteCount(prefix ?? "");
        int rank = 0;
        foreach (var m in mergesElement.EnumerateArray())
        {
            string mp = $"{path}.merges[{rank}]";
            string left, right;
            if (m.ValueKind == JsonValueKind.String)
            {
                // Legacy form "left right": exactly one space.
                string s = json.String(m, mp);
                int space = s.IndexOf(' ');
                if (space < 0 || s.IndexOf(' ', space + 1) >= 0) throw json.Error(mp, $"merge \"{Clip(s)}\" is not two tokens separated by one space");
                left = s[..space];
                right = s[(space + 1)..];
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2)
            {
                left = json.String(m[0], mp + "[0]");
                right = json.String(m[1], mp + "[1]");
            }
            else throw json.Error(mp, "expected \"a b\" or [\"a\", \"b\"]");
            if (!vocab.TryGetValue(left, out int a)) throw json.Error(mp, $"token \"{Clip(left)}\" is not in the vocabulary");
            if (!vocab.TryGetValue(right, out int b)) throw json.Error(mp, $"token \"{Clip(right)}\" is not in the vocabulary");
            string merged = left + (StripPrefixBytes(right, prefixBytes) ?? throw json.Error(mp, "right token does not hold continuing_subword_prefix's bytes"));
            if (!vocab.TryGetValue(merged, out int c)) throw json.Error(mp, $"merged token \"{Clip(merged)}\" is not in the vocabulary");
            mergeRank[Pair(a, b)] = rank; // a repeated pair keeps its last rank, as Hugging Face's map does
            rankNewId[rank] = c;
            rank++;
        }

        int? unkId = null;
        if (json.OptionalString(model, path, "unk_token") is { } unk)
        {
            // Hugging Face fails only when an unknown character meets an unk_token outside the vocabulary.
            unkId = vocab.TryGetValue(unk, out int u) ? u : throw json.Error(path + ".unk_token", $"\"{Clip(unk)}\" is not in the vocabulary");
        }
        return new HfBpeModel(vocab, idToToken, mergeRank, rankNewId, unkId,
            json.OptionalBool(model, path, "byte_fallback", false), json.OptionalBool(model, path, "fuse_unk", false),
            json.OptionalBool(model, path, "ignore_merges", false), prefix, json.OptionalString(model, path, "end_of_word_suffix"));
    }

    /// <summary>The token with its first <paramref name="count"/> UTF-8 bytes cut (Hugging Face cuts the prefix's
    /// length without comparing), or null when that is not a character boundary.</summary>
    private static string? StripPrefixBytes(string token, int count)
    {
        if (count == 0) return token;
        byte[] bytes = Encoding.UTF8.GetBytes(token);
        if (bytes.Length < count || count < bytes.Length && (bytes[count] & 0xC0) == 0x80) return null;
        return Encoding.UTF8.GetString(bytes, count, bytes.Length - count);
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static long Pair(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>
    /// Hashes a <see cref="Pair"/> key by Fibonacci multiplication. long's own hash is <c>a ^ b</c>: ids below the
    /// vocabulary size give at most that many distinct hashes for all merges, and long collision chains made a
    /// 280-character piece cost ~0.5 ms.
    /// </summary>
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long key) => (int)(((ulong)key * 0x9E3779B97F4A7C15UL) >> 32);
    }

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out int id) ? id : null;

    public string? IdToToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    public void Tokenize(string piece, List<int> ids)
    {
        if (_ignoreMerges && _vocab.TryGetValue(piece, out int whole)) { ids.Add(whole); return; }
        if (_cache.TryGet(piece, out var cached)) { ids.AddRange(cached); return; }
        var word = MergeWord(piece);
        ids.AddRange(word);
        _cache.Add(piece, word);
    }

    /// <summary>Symbols of <paramref name="w"/> after all merges (Hugging Face's <c>merge_word</c>).</summary>
    internal int[] MergeWord(string w)
    {
        var symbols = new List<int>(w.Length);
        int pendingUnk = -1; // the unknown token waiting to be emitted (fused runs emit once)
        Span<char> buffer = stackalloc char[64];
        for (int i = 0; i < w.Length;)
        {
            int n = char.IsHighSurrogate(w[i]) && i + 1 < w.Length && char.IsLowSurrogate(w[i + 1]) ? 2 : 1;
            bool first = i == 0, last = i + n == w.Length;
            int id;
            ReadOnlySpan<char> s;
            if (_prefix == null && _suffix == null)
            {
                s = w.AsSpan(i, n);
                id = n == 1 && w[i] < _smallCharIds.Length ? _smallCharIds[w[i]] : (_lookup.TryGetValue(s, out int v) ? v : -1);
            }
            else
            {
                string full = (!first ? _prefix : null) + w.Substring(i, n) + (last ? _suffix : null);
                s = full;
                id = _lookup.TryGetValue(s, out int v) ? v : -1;
            }
            i += n;
            if (id >= 0)
            {
                if (pendingUnk >= 0) { symbols.Add(pendingUnk); pendingUnk = -1; }
                symbols.Add(id);
                continue;
            }
            if (_byteIds != null && TryByteFallback(s, symbols, buffer)) continue;
            if (UnkId is int unk)
            {
                if (pendingUnk >= 0 && !_fuseUnk) symbols.Add(pendingUnk);
                pendingUnk = unk;
            }
        }
        if (pendingUnk >= 0) symbols.Add(pendingUnk);
        return MergeAll(symbols);
    }

    /// <summary>Appends the byte pieces of <paramref name="s"/> when every one of its bytes has one.</summary>
    private bool TryByteFallback(ReadOnlySpan<char> s, List<int> symbols, Span<char> scratch)
    {
        int max = Encoding.UTF8.GetMaxByteCount(s.Length);
        Span<byte> bytes = max <= 128 ? stackalloc byte[max] : new byte[max];
        int count = Encoding.UTF8.GetBytes(s, bytes);
        for (int k = 0; k < count; k++) if (_byteIds![bytes[k]] < 0) return false;
        for (int k = 0; k < count; k++) symbols.Add(_byteIds![bytes[k]]);
        return true;
    }

    /// <summary>Applies merges to <paramref name="ids"/>: a min-heap of (rank, position); a popped entry is skipped
    /// when its left symbol is gone, has no right neighbour, or the pair there no longer merges into its id.</summary>
    private int[] MergeAll(List<int> ids)
    {
        int n = ids.Count;
        if (n < 2 || _rankNewId.Length == 0) return ids.ToArray();
        var id = ids.ToArray();
        var next = new int[n];
        var prev = new int[n];
        var removed = new bool[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; }
        var heap = new MinHeap(n);
        for (int i = 0; i + 1 < n; i++)
            if (_mergeRank.TryGetValue(Pair(id[i], id[i + 1]), out int r)) heap.Push(((long)r << 32) | (uint)i);

        while (heap.Count > 0)
        {
            long top = heap.Pop();
            int rank = (int)(top >> 32), pos = (int)(uint)top;
            if (removed[pos] || next[pos] < 0) continue;
            int right = next[pos];
            int newId = _rankNewId[rank];
            if (!_mergeRank.TryGetValue(Pair(id[pos], id[right]), out int currentRank) || _rankNewId[currentRank] != newId) continue;
            id[pos] = newId;
            removed[right] = true;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0 && _mergeRank.TryGetValue(Pair(id[prev[pos]], newId), out int rl)) heap.Push(((long)rl << 32) | (uint)prev[pos]);
            if (next[pos] >= 0 && _mergeRank.TryGetValue(Pair(newId, id[next[pos]]), out int rr)) heap.Push(((long)rr << 32) | (uint)pos);
        }
        int count = 0;
        for (int i = 0; i < n; i++) if (!removed[i]) count++;
        var result = new int[count];
        for (int i = 0, k = 0; i < n; i++) if (!removed[i]) result[k++] = id[i];
        return result;
    }

    /// <summary>A binary min-heap of longs.</summary>
    private sealed class MinHeap(int capacity)
    {
        private long[] _items = new long[Math.Max(4, capacity)];
        public int Count { get; private set; }

        public void Push(long v)
        {
            if (Count == _items.Length) Array.Resize(ref _items, _items.Length * 2);
            int i = Count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (_items[parent] <= v) break;
                _items[i] = _items[parent];
                i = parent;
            }
            _items[i] = v;
        }

        public long Pop()
        {
            long top = _items[0];
            long last = _items[--Count];
            int i = 0;
            while (true)
            {
                int child = 2 * i + 1;
                if (child >= Count) break;
                if (child + 1 < Count && _items[child + 1] < _items[child]) child++;
                if (_items[child] >= last) break;
                _items[i] = _items[child];
                i = child;
            }
            if (Count > 0) _items[i] = last;
            return top;
        }
    }
}
