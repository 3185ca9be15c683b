using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Qmoe.Text;

/// <summary>
/// The T5 tokenizer: a SentencePiece unigram model (<c>spiece.model</c>: pad 0, eos 1, unk 2, no bos) plus
/// <see cref="SentinelCount"/> sentinels <c>&lt;extra_id_k&gt;</c> = PieceCount + SentinelCount − 1 − k
/// (= vocab_size − 1 − k for the Switch fixtures). Encoding appends eos (T5 convention); literal
/// <c>&lt;extra_id_k&gt;</c> markers in the text become their sentinel ids and the text between them is
/// encoded piece by piece, as Hugging Face's T5Tokenizer does.
/// </summary>
public sealed partial class T5Tokenizer
{
    public const int PadId = 0;
    public const int EosId = 1;
    public const int UnkId = 2;
    public const string ModelFileName = "spiece.model";

    private readonly SentencePieceTokenizer _spm;

    /// <summary>
    /// Microsoft.ML.Tokenizers indexes its vocabulary with <c>trainer_spec.bos_id</c> and fails on T5's −1 (no
    /// bos). Protobuf merges a repeated embedded message field, so appending <c>trainer_spec { bos_id: 0 }</c>
    /// to the model bytes points that unused bos at the pad piece; bos is never emitted here.
    /// Bytes: field 2 (TrainerSpec), length 3; field 41 (bos_id) varint tag 0xC8 0x02, value 0.
    /// </summary>
    private static readonly byte[] BosIdOverride = [0x12, 0x03, 0xC8, 0x02, 0x00];

    /// <summary>Number of SentencePiece pieces (ids 0 .. PieceCount−1).</summary>
    public int PieceCount { get; }
    /// <summary>Number of <c>&lt;extra_id_k&gt;</c> sentinels above the pieces (100 for Switch, 0 for Mixtral).</summary>
    public int SentinelCount { get; }
    /// <summary>PieceCount + SentinelCount: every valid id is below this.</summary>
    public int VocabSize => PieceCount + SentinelCount;

    private T5Tokenizer(SentencePieceTokenizer spm, int pieceCount, int sentinelCount)
    {
        _spm = spm; PieceCount = pieceCount; SentinelCount = sentinelCount;
    }

    /// <summary>Loads <c>spiece.model</c> from <paramref name="modelDir"/>.</summary>
    /// <param name="modelDir">a model directory holding <c>spiece.model</c></param>
    /// <param name="sentinelCount">number of sentinels (Switch/T5: 100; decoder-only models: 0)</param>
    public static T5Tokenizer Load(string modelDir, int sentinelCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sentinelCount);
        string path = Path.Combine(modelDir, ModelFileName);
        if (!File.Exists(path)) throw new QmoeException($"{modelDir}: no tokenizer ({ModelFileName} not found)");
        SentencePieceTokenizer spm;
        try
        {
            using var stream = new MemoryStream([.. File.ReadAllBytes(path), .. BosIdOverride]);
            spm = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not QmoeException)
        {
            throw new QmoeException($"{modelDir}: unreadable tokenizer {ModelFileName} ({e.Message.ReplaceLineEndings(" ")})", e);
        }
        int pieces = spm.Vocabulary.Values.Max() + 1; // the vocabulary also maps the absent bos piece "<s>" to 0
        if (spm.EndOfSentenceId != EosId || spm.UnknownId != UnkId || pieces <= UnkId)
            throw new QmoeException($"{modelDir}: {ModelFileName} is not a T5 vocabulary (eos {spm.EndOfSentenceId}, unk {spm.UnknownId}; expected eos 1, unk 2)");
        return new T5Tokenizer(spm, pieces, sentinelCount);
    }

    /// <summary>The id of <c>&lt;extra_id_k&gt;</c>.</summary>
    public int SentinelId(int k)
    {
        if ((uint)k >= (uint)SentinelCount) throw new QmoeException($"<extra_id_{k}>: this tokenizer has {SentinelCount} sentinels");
        return VocabSize - 1 - k;
    }

    /// <summary>True when <paramref name="id"/> is a sentinel <c>&lt;extra_id_k&gt;</c>.</summary>
    public bool IsSentinel(int id) => id >= PieceCount && id < VocabSize;

    /// <summary>Token ids of <paramref name="text"/>, followed by eos when <paramref name="addEos"/>.</summary>
    public int[] Encode(string text, bool addEos = true)
    {
        var ids = new List<int>();
        EncodeTo(text, ids);
        if (addEos) ids.Add(EosId);
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> (no eos) to <paramref name="ids"/>.</summary>
    public void EncodeTo(string text, List<int> ids)
    {
        int start = 0;
        foreach (Match m in SentinelMarker().Matches(text))
        {
            EncodePieces(text.AsSpan(start, m.Index - start), ids);
            if (!int.TryParse(m.Groups[1].ValueSpan, out int k)) k = int.MaxValue;
            ids.Add(SentinelId(k));
            start = m.Index + m.Length;
        }
        EncodePieces(text.AsSpan(start), ids);
    }

    private void EncodePieces(ReadOnlySpan<char> chunk, List<int> ids)
    {
        if (chunk.IsWhiteSpace()) return; // SentencePiece strips outer whitespace: nothing to encode
        ids.AddRange(_spm.EncodeToIds(chunk, addBeginningOfSentence: false, addEndOfSentence: false));
    }

    /// <summary>Text of <paramref name="ids"/>: pad and eos are skipped, sentinels rendered as <c>&lt;extra_id_k&gt;</c>.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var run = new List<int>();
        void Flush()
        {
            if (run.Count == 0) return;
            if (text.Length > 0) text.Append(' ');
            text.Append(_spm.Decode(run));
            run.Clear();
        }
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)VocabSize) throw new QmoeException($"token id {id} out of range [0, {VocabSize})");
            if (id is PadId or EosId) continue;
            if (IsSentinel(id))
            {
                Flush();
                if (text.Length > 0) text.Append(' ');
                text.Append("<extra_id_").Append(VocabSize - 1 - id).Append('>');
            }
            else run.Add(id);
        }
        Flush();
        return text.ToString();
    }

    [GeneratedRegex(@"<extra_id_(\d+)>")]
    private static partial Regex SentinelMarker();
}
