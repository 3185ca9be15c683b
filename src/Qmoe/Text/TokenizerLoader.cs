namespace Qmoe.Text;

/// <summary>
/// Chooses and loads a checkpoint's tokenizer in Hugging Face's order: <c>tokenizer.json</c> (what transformers'
/// fast tokenizers use), else <c>tokenizer.model</c>, else <c>spiece.model</c> (SentencePiece unigram or BPE),
/// with the special-token settings of <c>tokenizer_config.json</c> / <c>generation_config.json</c> applied.
/// A checkpoint's model family chooses (<see cref="Models.IModelFamily.LoadTokenizer(string, int?)"/>): Switch
/// checkpoints get the T5 tokenizer with its 100 sentinels.
/// </summary>
public static class TokenizerLoader
{
    public const string TokenizerJson = "tokenizer.json", TokenizerModel = "tokenizer.model", SpieceModel = "spiece.model";

    /// <summary>Kimi-K2's tokenizer file (tiktoken ranks, read by its own Python code): recognised, not read.</summary>
    public const string TiktokenModel = "tiktoken.model";

    /// <summary>T5 and Switch checkpoints have 100 sentinels <c>&lt;extra_id_0..99&gt;</c> above the SentencePiece pieces.</summary>
    public const int T5Sentinels = 100;

    /// <summary>
    /// The tokenizer files of <paramref name="dir"/>, in Hugging Face's order. <paramref name="embeddingRows"/>, when
    /// given, is the model's vocab_size, which must hold every id the tokenizer produces.
    /// </summary>
    public static ITokenizer Load(string dir, int? embeddingRows = null)
    {
        if (!Directory.Exists(dir)) throw new QmoeException($"{dir}: directory not found");
        var tokenizer = LoadAny(dir);
        if (embeddingRows is int rows && tokenizer.VocabSize > rows)
            throw new QmoeException($"{dir}: the tokenizer's vocabulary of {tokenizer.VocabSize} tokens exceeds the model's vocab_size {rows}");
        return tokenizer;
    }

    /// <summary>
    /// The tokenizer of a checkpoint directory (its config.json's vocab_size applies, and the family of its model_type
    /// chooses, when it is one of <see cref="Models.ModelFamilies"/>) or of a directory holding only tokenizer files
    /// (no config.json: no vocabulary check).
    /// </summary>
    public static ITokenizer ForDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new QmoeException($"{dir}: directory not found");
        if (!File.Exists(Path.Combine(dir, "config.json"))) return Load(dir);
        var config = Models.ConfigReader.Load(dir);
        int? rows = config.Has("vocab_size") ? config.Int("vocab_size") : null;
        var family = config.Has("model_type") ? Models.ModelFamilies.All.FirstOrDefault(f => f.ModelType == config.ModelType) : null;
        return family != null ? family.LoadTokenizer(dir, rows) : Load(dir, rows);
    }

    /// <summary>A Switch/T5 checkpoint's tokenizer: its <c>spiece.model</c> and 100 sentinels (T5 conventions kept exactly),
    /// which must fit in <paramref name="embeddingRows"/> when given (HF pads vocab_size beyond them, e.g. 32000 + 100 ≤ 32128).</summary>
    public static T5Tokenizer LoadT5(string dir, int? embeddingRows = null)
    {
        var t5 = T5Tokenizer.Load(dir, T5Sentinels);
        if (embeddingRows is int rows && t5.VocabSize > rows)
            throw new QmoeException($"{dir}: the tokenizer's {t5.PieceCount} pieces + {t5.SentinelCount} sentinels exceed vocab_size {rows}");
        return t5;
    }

    private static ITokenizer LoadAny(string dir)
    {
        string json = Path.Combine(dir, TokenizerJson);
        string model = Path.Combine(dir, TokenizerModel), spiece = Path.Combine(dir, SpieceModel);
        var settings = TokenizerSettings.Read(dir);
        if (File.Exists(json))
        {
            var hf = HuggingFace.HfTokenizer.Load(json);
            return new ConfiguredTokenizer(hf, settings, hf.TokenToId, dir);
        }
        string? spm = File.Exists(model) ? model : File.Exists(spiece) ? spiece : null;
        if (spm == null && File.Exists(Path.Combine(dir, TiktokenModel)))
            throw new QmoeException($"{dir}: its tokenizer is {TiktokenModel} (Kimi-K2's tiktoken BPE), which qmoe does not read yet; " +
                "calibrate from token ids instead (compress --calib tokens.safetensors)");
        if (spm == null) throw new QmoeException($"{dir}: no tokenizer ({TokenizerJson}, {TokenizerModel} or {SpieceModel} not found)");
        var sp = SentencePieceTokenizer.Load(spm, SentencePieceOptions.For(spm) with { AddedTokens = settings.AddedTokens });
        return new ConfiguredTokenizer(sp, settings, sp.PieceId, dir);
    }
}
