using System.Text;
using System.Text.RegularExpressions;

namespace Qmoe.Text;

/// <summary>
/// The T5 tokenizer: a SentencePiece model (<c>spiece.model</c>; T5's own has pad 0, eos 1, unk 2, no bos, but
/// any ids the model's piece types give are accepted, e.g. ruT5's) plus <see cref="SentinelCount"/> sentinels
/// <c>&lt;extra_id_k&gt;</c> = PieceCount + SentinelCount − 1 − k (= vocab_size − 1 − k for the Switch fixtures).
/// Encoding appends eos (T5 convention); literal <c>&lt;extra_id_k&gt;</c> markers in the text become their
/// sentinel ids and the text between them is encoded by the SentencePiece core, as Hugging Face's T5Tokenizer
/// does. Immutable and thread-safe.
/// </summary>
public sealed partial class T5Tokenizer : ITokenizer
{
    /// <summary>T5's own special ids (the Switch checkpoints').</summary>
    public const int PadId = 0;
    public const int EosId = 1;
    public const int UnkId = 2;
    public const string ModelFileName = "spiece.model";

    private readonly SentencePieceTokenizer _pieces;

    /// <summary>Number of SentencePiece pieces (ids 0 .. PieceCount−1).</summary>
    public int PieceCount => _pieces.PieceCount;
    /// <summary>Number of <c>&lt;extra_id_k&gt;</c> sentinels above the pieces (100 for Switch, 0 for Mixtral).</summary>
    public int SentinelCount { get; }
    /// <summary>PieceCount + SentinelCount: every valid id is below this.</summary>
    public int VocabSize => PieceCount + SentinelCount;
    /// <summary>The eos id appended to every encoded text.</summary>
    public int Eos { get; }

    /// <inheritdoc/>
    public string Kind => _pieces.Kind;

    /// <summary>From the model's piece types: T5's are no bos, eos 1, pad 0, unk 2.</summary>
    public SpecialTokens Special => _pieces.Special;

    private T5Tokenizer(SentencePieceTokenizer pieces, int sentinelCount)
    {
        _pieces = pieces;
        SentinelCount = sentinelCount;
        Eos = pieces.Special.Eos[0];
    }

    /// <summary>Loads <c>spiece.model</c> from <paramref name="modelDir"/>.</summary>
    /// <param name="modelDir">a model directory holding <c>spiece.model</c></param>
    /// <param name="sentinelCount">number of sentinels (Switch/T5: 100; decoder-only models: 0)</param>
    public static T5Tokenizer Load(string modelDir, int sentinelCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sentinelCount);
        string path = Path.Combine(modelDir, ModelFileName);
        if (!File.Exists(path)) throw new QmoeException($"{modelDir}: no tokenizer ({ModelFileName} not found)");
        return From(SentencePieceTokenizer.Load(path, new SentencePieceOptions { AddEos = true }), sentinelCount);
    }

    /// <summary>A T5 tokenizer over an already loaded SentencePiece model, which must have an eos piece.</summary>
    public static T5Tokenizer From(SentencePieceTokenizer pieces, int sentinelCount)
    {
        if (pieces.Special.Eos.Count == 0)
            throw new QmoeException($"{pieces.SourcePath}: not a T5 vocabulary (no eos piece)");
        return new T5Tokenizer(pieces, sentinelCount);
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
        if (addSpecialTokens) ids.Add(Eos);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> (no eos) to <paramref name="ids"/>.</summary>
    public void EncodeTo(string text, List<int> ids)
    {
        int start = 0;
        foreach (Match m in SentinelMarker().Matches(text))
        {
            _pieces.EncodeTo(text.AsSpan(start, m.Index - start), ids);
            if (!int.TryParse(m.Groups[1].ValueSpan, out int k)) k = int.MaxValue;
            ids.Add(SentinelId(k));
            start = m.Index + m.Length;
        }
        _pieces.EncodeTo(text.AsSpan(start), ids);
    }

    /// <summary>Text of <paramref name="ids"/>: control pieces (pad, eos) are skipped, sentinels rendered as
    /// <c>&lt;extra_id_k&gt;</c>, spaces collapsed and trimmed (T5's own decoding; <paramref name="skipSpecialTokens"/>
    /// makes no difference here).</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        var text = new StringBuilder();
        int run = 0;
        for (int i = 0; i <= ids.Length; i++)
        {
            if (i < ids.Length && (uint)ids[i] >= (uint)VocabSize) throw new QmoeException($"token id {ids[i]} out of range [0, {VocabSize})");
            if (i < ids.Length && !IsSentinel(ids[i])) continue;
            text.Append(_pieces.Decode(ids[run..i]));
            if (i < ids.Length) text.Append(" <extra_id_").Append(VocabSize - 1 - ids[i]).Append("> ");
            run = i + 1;
        }
        // Spaces around sentinels collapse.
        return MultipleSpaces().Replace(text.ToString(), " ").Trim();
    }

    [GeneratedRegex(@"<extra_id_(\d+)>")]
    private static partial Regex SentinelMarker();

    [GeneratedRegex(" {2,}")]
    private static partial Regex MultipleSpaces();
}
