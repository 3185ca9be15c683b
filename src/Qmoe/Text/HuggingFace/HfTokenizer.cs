using System.Text;
using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// A Hugging Face <c>tokenizer.json</c> tokenizer (what transformers' fast tokenizers load), encoding and decoding
/// as the <c>tokenizers</c> library does: added tokens found in the raw text, the normalizer, the pre-tokenizer,
/// the BPE or Unigram model, and with special tokens the post-processor; decoding through the decoder.
/// <para>Written by hand: Microsoft.ML.Tokenizers 2.0.1 has no <c>tokenizer.json</c> loader, and its BPE over
/// this project's fixtures is not exact (see docs/SPEC.md, "Hugging Face tokenizer.json").</para>
/// <para>Special ids from <c>tokenizer.json</c> alone: unk = the model's unknown token; bos / eos = the special
/// tokens a TemplateProcessing (or Roberta/Bert) post-processor puts before / after the sequence (first before, last
/// after); pad = <c>padding.pad_id</c>. The checkpoint loader overrides them from <c>tokenizer_config.json</c>.</para>
/// Immutable and thread-safe.
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    /// <summary>Largest tokenizer.json accepted (the biggest real ones are ~30 MB).</summary>
    public const long MaxFileBytes = 1L << 30;

    private readonly IHfModel _model;
    private readonly HfAddedVocabulary _added;
    private readonly IHfNormalizer? _normalizer;
    private readonly IHfPreTokenizer[] _preTokenizers;
    private readonly IHfPostProcessor? _postProcessor;
    private readonly IHfDecoder? _decoder;

    /// <inheritdoc/>
    public string Kind => _model.Kind;
    /// <inheritdoc/>
    public int VocabSize { get; }
    /// <inheritdoc/>
    public SpecialTokens Special { get; }
    /// <summary>The <c>added_tokens</c>, by id, with the ids Hugging Face gives them.</summary>
    public IReadOnlyList<AddedToken> AddedTokens => _added.Tokens;

    private HfTokenizer(IHfModel model, HfAddedVocabulary added, IHfNormalizer? normalizer, IHfPreTokenizer[] preTokenizers,
        IHfPostProcessor? postProcessor, IHfDecoder? decoder, int? padId)
    {
        _model = model;
        _added = added;
        _normalizer = normalizer;
        _preTokenizers = preTokenizers;
        _postProcessor = postProcessor;
        _decoder = decoder;
        VocabSize = Math.Max(model.IdLimit, added.IdLimit);
        var (before, after) = postProcessor?.Around ?? ([], []);
        Special = new SpecialTokens(before.Count > 0 ? before[0] : null, after.Count > 0 ? [after[^1]] : [], padId, model.UnkId);
    }

    /// <summary>Loads <paramref name="tokenizerJsonPath"/>; a malformed file or an unsupported component is a
    /// one-line <see cref="QmoeException"/> naming the file and field.</summary>
    public static HfTokenizer Load(string tokenizerJsonPath)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(tokenizerJsonPath);
            if (!info.Exists) throw new QmoeException($"{tokenizerJsonPath}: not found");
            if (info.Length > MaxFileBytes) throw new QmoeException($"{tokenizerJsonPath}: {info.Length} bytes, larger than the {MaxFileBytes}-byte limit");
            bytes = File.ReadAllBytes(tokenizerJsonPath);
        }
        catch (IOException e) { throw new QmoeException($"{tokenizerJsonPath}: unreadable ({e.Message.ReplaceLineEndings(" ")})", e); }
        catch (UnauthorizedAccessException e) { throw new QmoeException($"{tokenizerJsonPath}: unreadable ({e.Message.ReplaceLineEndings(" ")})", e); }
        return Parse(bytes, tokenizerJsonPath);
    }

    /// <summary>Parses the bytes of a <c>tokenizer.json</c>; <paramref name="name"/> names it in errors.</summary>
    public static HfTokenizer Parse(ReadOnlySpan<byte> utf8Json, string name)
    {
        var json = new HfJson(name);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(utf8Json.ToArray(), new JsonDocumentOptions { MaxDepth = 128 }); }
        catch (JsonException e) { throw new QmoeException(HfJson.Printable($"{name}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"), e); }
        using (doc)
        {
            var root = json.Object(doc.RootElement, "(root)");
            if (json.OptionalString(root, "", "version") is { } v && v != "1.0") throw json.Unsupported("version", $"version {v}");
            if (HfJson.Optional(root, "truncation") != null) throw json.Unsupported("truncation", "truncation");
            int? padId = null;
            if (HfJson.Optional(root, "padding") is { } padding)
            {
                json.Object(padding, "padding");
                // Padding to the batch's longest changes nothing for one sequence; a fixed length would.
                if (HfJson.Optional(padding, "strategy") is { } s && !(s.ValueKind == JsonValueKind.String && s.ValueEquals("BatchLongest")))
                    throw json.Unsupported("padding.strategy", "padding other than BatchLongest");
                if (HfJson.Optional(padding, "pad_id") is { } p) padId = json.Int(p, "padding.pad_id");
            }

            var modelElement = json.Object(json.Required(root, "", "model"), "model");
            string modelType = HfJson.Optional(modelElement, "type") is { } t ? json.String(t, "model.type")
                : HfJson.Optional(modelElement, "merges") != null ? "BPE" : "Unigram";
            IHfModel model = modelType switch
            {
                "BPE" => HfBpeModel.Parse(json, modelElement, "model", utf8Json.Length),
                "Unigram" => HfUnigramModel.Parse(json, modelElement, "model"),
                _ => throw json.Unsupported("model.type", $"model type {modelType}"),
            };
            var normalizer = HfNormalizers.Parse(json, HfJson.Optional(root, "normalizer"), "normalizer");
            var preTokenizers = new List<IHfPreTokenizer>();
            HfPreTokenizers.Parse(json, HfJson.Optional(root, "pre_tokenizer"), "pre_tokenizer", preTokenizers);
            var post = HfPostProcessors.Parse(json, HfJson.Optional(root, "post_processor"), "post_processor");
            var decoder = HfDecoders.Parse(json, HfJson.Optional(root, "decoder"), "decoder");
            var added = new HfAddedVocabulary(json, HfJson.Optional(root, "added_tokens"), model, normalizer);
            if (padId is int pad && pad >= Math.Max(model.IdLimit, added.IdLimit)) throw json.Error("padding.pad_id", $"{pad} is not a token id");
            return new HfTokenizer(model, added, normalizer, preTokenizers.ToArray(), post, decoder, padId);
        }
    }

    /// <summary>The id of a token string (added tokens first, then the model's vocabulary), or null.</summary>
    public int? TokenToId(string token) => _added.TokenToId(token) ?? _model.TokenToId(token);

    /// <summary>The string of an id (added tokens first, then the model's vocabulary), or null for an unused id.</summary>
    public string? IdToToken(int id) => _added.IdToToken(id) ?? _model.IdToToken(id);

    /// <summary>True when <paramref name="id"/> is an added token marked special (what decoding skips).</summary>
    public bool IsSpecial(int id) => IdToToken(id) is { } t && _added.IsSpecial(t);

    /// <inheritdoc/>
    public int[] Encode(string text, bool addSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        foreach (var piece in PreTokenize(text))
        {
            if (piece.IsToken) ids.Add(piece.TokenId);
            else _model.Tokenize(piece.Text, ids);
        }
        if (addSpecialTokens && _postProcessor != null) ids = _postProcessor.AddSpecialTokens(ids);
        return ids.ToArray();
    }

    /// <summary>The pieces the model sees (and the added tokens between them): added tokens, normalizer, pre-tokenizers.</summary>
    internal List<HfPiece> PreTokenize(string text)
    {
        // Rust strings cannot hold lone surrogates; the reference binding turns them into U+FFFD.
        text = ReplaceLoneSurrogates(text);
        var pieces = new List<HfPiece>();
        _added.SplitRaw(text, pieces);
        var next = new List<HfPiece>(pieces.Count);
        foreach (var p in pieces)
        {
            if (p.IsToken) { next.Add(p); continue; }
            var normalized = _normalizer == null ? p : p with { Text = _normalizer.Normalize(p.Text) };
            _added.SplitNormalized(normalized, next);
        }
        (pieces, next) = (next, pieces);
        foreach (var pre in _preTokenizers)
        {
            next.Clear();
            foreach (var p in pieces)
            {
                if (p.IsToken) next.Add(p);
                else pre.Split(p, next);
            }
            (pieces, next) = (next, pieces);
        }
        return pieces;
    }

    private static string ReplaceLoneSurrogates(string text)
    {
        int i = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0) return text;
        StringBuilder? sb = null;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            sb ??= new StringBuilder(text);
            sb[i] = '\uFFFD';
        }
        return sb?.ToString() ?? text;
    }

    /// <summary>
    /// Text of <paramref name="ids"/> as Hugging Face's <c>decode</c> (no clean-up of tokenization spaces): each id's
    /// string (added tokens first), special ones dropped with <paramref name="skipSpecialTokens"/>, through the decoder
    /// (or joined with ' ' without one). Ids that no token has are dropped, as there; ids outside [0, VocabSize) are an error.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw new QmoeException($"token id {id} out of range [0, {VocabSize})");
            if (IdToToken(id) is not { } token) continue;
            if (skipSpecialTokens && _added.IsSpecial(token)) continue;
            tokens.Add(token);
        }
        if (_decoder == null) return string.Join(' ', tokens);
        return string.Concat(_decoder.DecodeChain(tokens));
    }
}
