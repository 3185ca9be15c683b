using System.Text;
using System.Text.RegularExpressions;

namespace Qmoe.Text;

/// <summary>
/// The T5 tokenizer: a SentencePiece unigram model (<c>spiece.model</c>: pad 0, eos 1, unk 2, no bos) plus
/// <see cref="SentinelCount"/> sentinels <c>&lt;extra_id_k&gt;</c> = PieceCount + SentinelCount − 1 − k
/// (= vocab_size − 1 − k for the Switch fixtures). Encoding appends eos (T5 convention); literal
/// <c>&lt;extra_id_k&gt;</c> markers in the text become their sentinel ids and the text between them is
/// encoded piece by piece, as Hugging Face's T5Tokenizer does. Immutable and thread-safe.
/// </summary>
public sealed partial class T5Tokenizer : ITokenizer
{
    public const int PadId = 0;
    public const int EosId = 1;
    public const int UnkId = 2;
    public const string ModelFileName = "spiece.model";

    private readonly SentencePieceModel _model;
    private readonly SentencePieceNormalizer _normalizer;
    private readonly UnigramViterbi _viterbi;

    /// <summary>Number of SentencePiece pieces (ids 0 .. PieceCount−1).</summary>
    public int PieceCount => _model.Pieces.Count;
    /// <summary>Number of <c>&lt;extra_id_k&gt;</c> sentinels above the pieces (100 for Switch, 0 for Mixtral).</summary>
    public int SentinelCount { get; }
    /// <summary>PieceCount + SentinelCount: every valid id is below this.</summary>
    public int VocabSize => PieceCount + SentinelCount;

    /// <inheritdoc/>
    public string Kind => "sentencepiece-unigram";

    /// <summary>T5: no bos, eos 1, pad 0, unk 2.</summary>
    public SpecialTokens Special { get; } = new(null, [EosId], PadId, UnkId);

    private T5Tokenizer(SentencePieceModel model, int sentinelCount)
    {
        _model = model;
        _normalizer = new SentencePieceNormalizer(model);
        _viterbi = new UnigramViterbi(model);
        SentinelCount = sentinelCount;
    }

    /// <summary>Loads <c>spiece.model</c> from <paramref name="modelDir"/>.</summary>
    /// <param name="modelDir">a model directory holding <c>spiece.model</c></param>
    /// <param name="sentinelCount">number of sentinels (Switch/T5: 100; decoder-only models: 0)</param>
    public static T5Tokenizer Load(string modelDir, int sentinelCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sentinelCount);
        string path = Path.Combine(modelDir, ModelFileName);
        if (!File.Exists(path)) throw new QmoeException($"{modelDir}: no tokenizer ({ModelFileName} not found)");
        try
        {
            var model = SentencePieceModel.Parse(File.ReadAllBytes(path));
            string? defect =
                model.Pieces.Count <= UnkId ? $"only {model.Pieces.Count} pieces" :
                model.ModelType != 1 ? $"model type {model.ModelType}, only unigram (1) is supported" :
                model.PadId != PadId || model.EosId != EosId || model.UnkId != UnkId ? $"pad/eos/unk ids {model.PadId}/{model.EosId}/{model.UnkId}, T5 needs 0/1/2" :
                model.BosId >= 0 ? $"bos id {model.BosId}, T5 has no bos" :
                model.ByteFallback || model.TreatWhitespaceAsSuffix ? "byte fallback / whitespace-as-suffix are not supported" :
                model.Pieces.Any(p => p.Type == SentencePieceModel.PieceType.UserDefined) ? "user-defined pieces are not supported" :
                null;
            if (defect != null) throw new QmoeException($"{modelDir}: {ModelFileName} is not a T5 vocabulary ({defect})");
            return new T5Tokenizer(model, sentinelCount);
        }
        catch (Exception e) when (e is not QmoeException)
        {
            throw new QmoeException($"{modelDir}: unreadable tokenizer {ModelFileName} ({e.Message.ReplaceLineEndings(" ")})", e);
        }
    }

    /// <summary>The id of <c>&lt;extra_id_k&gt;</c>.</summary>
    public int SentinelId(int k)
    {
        if ((uint)k >= (uint)SentinelCount) throw new QmoeException($"<extra_id_{k}>: this tokenizer has {SentinelCount} sentinels");
        return VocabSize - 1 - k;
    }

    /// <summary>True when <paramref name="id"/> is a sentinel <c>&lt;extra_id_k&gt;</c>.</summary>
    public bool IsSentinel(int id) => id >= PieceCount && id < VocabSize;

    /// <summary>Token ids of <paramref name="text"/>, followed by eos when <paramref name="addSpecialTokens"/> (T5 convention).</summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        EncodeTo(text, ids);
        if (addSpecialTokens) ids.Add(EosId);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> (no eos) to <paramref name="ids"/>.</summary>
    public void EncodeTo(string text, List<int> ids)
    {
        int start = 0;
        foreach (Match m in SentinelMarker().Matches(text))
        {
            EncodePieces(text[start..m.Index], ids);
            if (!int.TryParse(m.Groups[1].ValueSpan, out int k)) k = int.MaxValue;
            ids.Add(SentinelId(k));
            start = m.Index + m.Length;
        }
        EncodePieces(text[start..], ids);
    }

    private void EncodePieces(string chunk, List<int> ids) => _viterbi.Encode(_normalizer.Normalize(chunk), ids);

    /// <summary>Text of <paramref name="ids"/>: pad and eos are skipped, sentinels rendered as <c>&lt;extra_id_k&gt;</c>
    /// (T5's own decoding; <paramref name="skipSpecialTokens"/> makes no difference here).</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var text = new StringBuilder();
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw new QmoeException($"token id {id} out of range [0, {VocabSize})");
            if (IsSentinel(id)) text.Append(" <extra_id_").Append(VocabSize - 1 - id).Append("> ");
            else if (id == UnkId) text.Append(_model.UnkSurface);
            else if (_model.Pieces[id].Type != SentencePieceModel.PieceType.Control) text.Append(_model.Pieces[id].Text);
        }
        // '▁' marks a word start; the first one is the dummy prefix; spaces around sentinels collapse.
        text.Replace(SentencePieceNormalizer.SpaceSymbol, ' ');
        return MultipleSpaces().Replace(text.ToString(), " ").Trim();
    }

    [GeneratedRegex(@"<extra_id_(\d+)>")]
    private static partial Regex SentinelMarker();

    [GeneratedRegex(" {2,}")]
    private static partial Regex MultipleSpaces();
}
