using System.Text;

namespace Qmoe.Text;

/// <summary>
/// A SentencePiece tokenizer (<c>tokenizer.model</c> / <c>spiece.model</c>), unigram or BPE, encoding and
/// decoding exactly as the sentencepiece library's <c>encode</c> / <c>decode</c> do: normalize, segment,
/// then unknown pieces become their UTF-8 bytes' <c>&lt;0xNN&gt;</c> pieces (byte fallback) or one unknown id
/// per run of unknown characters. Text is plain text: special-token strings such as <c>&lt;s&gt;</c> are not
/// matched (as in sentencepiece). Special ids come from the piece types (UNKNOWN, CONTROL) and the trainer
/// spec (a checkpoint's configs may override them: <see cref="ConfiguredTokenizer"/>). Immutable and thread-safe.
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer
{
    private readonly SentencePieceModel _model;
    private readonly SentencePieceNormalizer _normalizer;
    private readonly IPieceSegmenter _segmenter;
    private readonly int[] _byteIds;               // <0xNN> piece id per byte value, or −1
    private readonly int[] _byteOfPiece;           // the byte a BYTE piece stands for, by id, or −1
    private readonly SentencePieceOptions _options;
    private readonly Dictionary<string, int> _pieceIds = new(StringComparer.Ordinal);

    /// <summary>The file it was read from (for messages).</summary>
    public string SourcePath { get; }
    public string Kind => _model.ModelType == SentencePieceModel.Bpe ? "sentencepiece-bpe" : "sentencepiece-unigram";
    /// <summary>Number of SentencePiece pieces (ids 0 .. PieceCount−1).</summary>
    public int PieceCount => _model.Pieces.Count;
    /// <summary>Pieces plus any added tokens above them (from <c>tokenizer_config.json</c>).</summary>
    public int VocabSize { get; }
    public SpecialTokens Special { get; }
    /// <summary>Whether <see cref="Encode"/> with special tokens prepends bos / appends eos.</summary>
    public bool AddsBos => _options.AddBos && Special.Bos != null;
    public bool AddsEos => _options.AddEos && Special.Eos.Count > 0;
    /// <summary>Added tokens above the pieces.</summary>
    public IReadOnlyDictionary<int, AddedToken> AddedTokens => _options.AddedTokens;

    internal SentencePieceModel Model => _model;

    private SentencePieceTokenizer(string path, SentencePieceModel model, SentencePieceOptions options)
    {
        SourcePath = path;
        _model = model;
        _options = options;
        var userDefined = Enumerable.Range(0, model.Pieces.Count)
            .Where(id => model.Pieces[id].Type == SentencePieceModel.PieceType.UserDefined)
            .Select(id => (model.Pieces[id].Text, id));
        _normalizer = new SentencePieceNormalizer(model, PieceTrie.OverUtf8(userDefined));
        _segmenter = model.ModelType == SentencePieceModel.Bpe ? new SentencePieceBpe(model) : new UnigramViterbi(model);
        for (int id = 0; id < model.Pieces.Count; id++) _pieceIds.TryAdd(model.Pieces[id].Text, id);
        _byteIds = new int[256];
        Array.Fill(_byteIds, -1);
        _byteOfPiece = new int[model.Pieces.Count];
        Array.Fill(_byteOfPiece, -1);
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            if (model.Pieces[id].Type != SentencePieceModel.PieceType.Byte) continue;
            int b = ParseBytePiece(model.Pieces[id].Text);
            if (b < 0) throw new QmoeException($"{path}: byte piece {id} '{model.Pieces[id].Text}' is not <0xNN>");
            _byteIds[b] = id;
            _byteOfPiece[id] = b;
        }
        var eos = model.EosId >= 0 ? new[] { model.EosId } : [];
        Special = new SpecialTokens(model.BosId >= 0 ? model.BosId : null, eos, model.PadId >= 0 ? model.PadId : null, model.UnkId);
        VocabSize = Math.Max(model.Pieces.Count, options.AddedTokens.Count == 0 ? 0 : options.AddedTokens.Keys.Max() + 1);
    }

    /// <summary>Reads a SentencePiece <c>.model</c> file; a one-line <see cref="QmoeException"/> naming it if it is unusable.</summary>
    public static SentencePieceTokenizer Load(string path, SentencePieceOptions? options = null) =>
        Create(SentencePieceModel.Load(path), path, options);

    /// <summary>A tokenizer from the bytes of a <c>.model</c> file (<paramref name="source"/> names it in errors).</summary>
    internal static SentencePieceTokenizer FromBytes(byte[] bytes, string source, SentencePieceOptions? options = null) =>
        Create(SentencePieceModel.FromBytes(bytes, source), source, options);

    private static SentencePieceTokenizer Create(SentencePieceModel model, string path, SentencePieceOptions? options)
    {
        try { return new SentencePieceTokenizer(path, model, options ?? SentencePieceOptions.For(path)); }
        catch (FormatException e) { throw new QmoeException($"{path}: {e.Message}"); }
    }

    private static int ParseBytePiece(string text) =>
        text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>'
        && byte.TryParse(text.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b) ? b : -1;

    /// <summary>The id of the piece (or added token) whose text is <paramref name="piece"/>, or null.</summary>
    public int? PieceId(string piece)
    {
        foreach (var (id, added) in _options.AddedTokens) if (added.Content == piece) return id;
        return _pieceIds.TryGetValue(piece, out int i) ? i : null;
    }

    /// <summary>Ids of <paramref name="text"/>; with special tokens, bos and/or eos as the options say.</summary>
    public int[] Encode(string text, bool addSpecialTokens)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens && AddsBos) ids.Add(Special.Bos!.Value);
        EncodeTo(text, ids);
        if (addSpecialTokens && AddsEos) ids.Add(Special.Eos[0]);
        return ids.ToArray();
    }

    /// <summary>Appends the piece ids of <paramref name="text"/> (no special tokens) to <paramref name="ids"/>.</summary>
    public void EncodeTo(ReadOnlySpan<char> text, List<int> ids)
    {
        var scratch = t_scratch ??= new Scratch();
        // A corrupt character map is only found where text reaches its bad entry.
        try { _normalizer.Normalize(text, scratch.Normalized); }
        catch (FormatException e) { throw new QmoeException($"{SourcePath}: {e.Message}"); }
        ReadOnlySpan<char> normalized = scratch.Normalized.Span;
        var segments = scratch.Segments;
        _segmenter.Segment(normalized, segments);
        int unk = _model.UnkId;
        bool prevUnknown = false;
        Span<byte> small = stackalloc byte[32];
        for (int i = 0; i < segments.Count; i++)
        {
            int id = segments.Ids[i];
            bool unknown = id == unk;
            if (unknown && _model.ByteFallback)
            {
                // Each UTF-8 byte of the unknown text becomes its <0xNN> piece.
                Span<byte> bytes = small;
                var piece = normalized.Slice(segments.Starts[i], segments.Lengths[i]);
                byte[]? big = piece.Length * 3 > bytes.Length ? new byte[piece.Length * 3] : null;
                int count = Encoding.UTF8.GetBytes(piece, big ?? bytes);
                foreach (byte b in (big ?? bytes)[..count]) ids.Add(_byteIds[b] >= 0 ? _byteIds[b] : unk);
            }
            else if (!(unknown && prevUnknown)) ids.Add(id); // a run of unknown pieces is one unknown id
            prevUnknown = unknown;
        }
    }

    /// <summary>
    /// Text of <paramref name="ids"/> as sentencepiece's <c>decode</c>: '▁' → ' ' with the first piece's leading one
    /// dropped, control pieces invisible (shown when <paramref name="skipSpecialTokens"/> is false), the unknown piece
    /// as its surface (" ⁇ "), runs of byte pieces reassembled into UTF-8 with each invalid byte → U+FFFD; added
    /// tokens above the pieces as their text unless special and skipped.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var text = new StringBuilder(ids.Length * 4);
        var bytes = new List<byte>();
        bool first = true;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw new QmoeException($"token id {id} out of range [0, {VocabSize})");
            if (id < PieceCount && _byteOfPiece[id] >= 0) { bytes.Add((byte)_byteOfPiece[id]); continue; }
            FlushBytes(bytes, text);
            if (id >= PieceCount)
            {
                var added = _options.AddedTokens.GetValueOrDefault(id);
                if (added != null && !(skipSpecialTokens && added.Special)) text.Append(added.Content);
                first = false;
                continue;
            }
            var piece = _model.Pieces[id];
            switch (piece.Type)
            {
                case SentencePieceModel.PieceType.Control:
                    // Invisible, and (as sentencepiece ≥ 0.1.99) not the start: "<s>▁Hello" decodes to "Hello".
                    if (!skipSpecialTokens) text.Append(piece.Text);
                    continue;
                case SentencePieceModel.PieceType.Unknown:
                    text.Append(_model.UnkSurface);
                    first = false;
                    continue;
            }
            bool atStart = first;
            first = false;
            ReadOnlySpan<char> t = piece.Text;
            if (atStart && (_model.AddDummyPrefix || _model.RemoveExtraWhitespaces) && t.Length > 0 && t[0] == SentencePieceNormalizer.SpaceSymbol) t = t[1..];
            int from = text.Length;
            text.Append(t);
            text.Replace(SentencePieceNormalizer.SpaceSymbol, ' ', from, text.Length - from);
        }
        FlushBytes(bytes, text);
        return text.ToString();
    }

    /// <summary>Appends pending byte pieces as UTF-8 (invalid bytes → U+FFFD, one per byte, as sentencepiece).</summary>
    private static void FlushBytes(List<byte> bytes, StringBuilder text)
    {
        if (bytes.Count == 0) return;
        ReadOnlySpan<byte> rest = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes);
        Span<char> chars = stackalloc char[2];
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(rest, out Rune rune, out int consumed) == System.Buffers.OperationStatus.Done)
                text.Append(chars[..rune.EncodeToUtf16(chars)]);
            else { text.Append('\uFFFD'); consumed = 1; }
            rest = rest[consumed..];
        }
        bytes.Clear();
    }

    private sealed class Scratch
    {
        public readonly CharBuffer Normalized = new();
        public readonly PieceSegments Segments = new();
    }

    [ThreadStatic] private static Scratch? t_scratch;
}

/// <summary>Special-token settings for a SentencePiece tokenizer, from the checkpoint's configs or the file's conventions.</summary>
public sealed record SentencePieceOptions
{
    /// <summary>Whether encoding with special tokens prepends bos (Llama/Mistral) / appends eos (T5).</summary>
    public bool AddBos { get; init; }
    public bool AddEos { get; init; }
    /// <summary>Tokens at ids ≥ the piece count (tokenizer_config.json's added_tokens_decoder).</summary>
    public IReadOnlyDictionary<int, AddedToken> AddedTokens { get; init; } = new Dictionary<int, AddedToken>();

    /// <summary>Hugging Face's defaults by file name: <c>tokenizer.model</c> is Llama's (add bos), <c>spiece.model</c> T5's (add eos).</summary>
    public static SentencePieceOptions For(string path) =>
        Path.GetFileName(path) == "spiece.model" ? new() { AddEos = true } : new() { AddBos = true };
}

/// <summary>A token added above the model's own vocabulary.</summary>
public sealed record AddedToken(string Content, bool Special);
