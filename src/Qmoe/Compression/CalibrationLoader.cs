using Qmoe.Models;
using Qmoe.Text;

namespace Qmoe.Compression;

/// <summary>
/// Builds the pipeline's calibration samples from plain text or a token file split: span-corrupted (fixed seed)
/// for encoder-decoders, plain causal blocks (<c>S.raw_blocks</c> of a token file) for decoder-only models.
/// </summary>
public static class CalibrationLoader
{
    /// <param name="modelDir">the model (its family decides the sample kind, its tokenizer encodes text)</param>
    /// <param name="textFile">plain text, one paragraph per line (.gz accepted); or null with <paramref name="tokenFile"/></param>
    /// <param name="tokenFile">a token file (safetensors with S.input_ids / S.labels, or S.raw_blocks)</param>
    /// <param name="split">the token file's split S</param>
    /// <param name="samples">samples to take</param>
    /// <param name="premask">encoder-decoders: mark sentinel positions so they stay out of the Hessians</param>
    /// <param name="seqLen">decoder-only text calibration: tokens per block (default <see cref="DefaultSeqLen"/>)</param>
    public static CalibrationData Load(string modelDir, string? textFile, string? tokenFile, string? split, int samples, bool premask,
        int? seqLen = null)
    {
        if ((textFile == null) == (tokenFile == null))
            throw new QmoeException("give exactly one of --calib-text FILE or --calib F.safetensors --split S");
        if (tokenFile != null && split == null) throw new QmoeException("--calib needs --split");
        if (textFile != null && !File.Exists(textFile)) throw new QmoeException($"{textFile}: calibration text not found");
        var config = ConfigReader.Load(modelDir);
        var family = ModelFamilies.For(config);
        int vocab = family.Validate(config).VocabSize;
        bool causal = family.Calibration == CalibrationKind.CausalBlocks;
        if (seqLen is int len && (len < 2 || tokenFile != null || !causal))
            throw new QmoeException($"--seq-len {len}: applies to a decoder-only model calibrated on text (--calib-text), and must be at least 2");
        if (causal) return LoadCausal(modelDir, family, config, vocab, textFile, tokenFile, split, samples, seqLen ?? DefaultSeqLen);
        var tokenizer = SentencePiece(family.LoadTokenizer(modelDir, config), modelDir);
        CalibrationSet set;
        string source;
        if (tokenFile != null)
        {
            set = CalibrationSet.FromTokenFile(tokenFile, split!, samples, vocab);
            source = $"{Path.GetFileName(tokenFile)}:{split}";
        }
        else
        {
            set = CalibrationSet.FromText(textFile!, tokenizer, samples);
            source = $"{Path.GetFileName(textFile)} (span corruption, seed {CalibrationSet.DefaultSeed})";
        }
        var enc = Rows(set.InputIds, set.InputLength);
        var dec = Rows(set.DecoderInputIds(), set.LabelLength);
        var data = new CalibrationData(enc, dec, source);
        if (!premask) return data;
        return data with
        {
            EncoderHessianMask = Rows(PreMask.Encoder(set.InputIds, tokenizer.PieceCount), set.InputLength),
            DecoderHessianMask = Rows(PreMask.Decoder(set.Labels, tokenizer.PieceCount), set.LabelLength),
        };
    }

    /// <summary>Tokens per causal calibration block from text when --seq-len is not given (GPTQ/AWQ use 2048).</summary>
    public const int DefaultSeqLen = 141;

    private static CalibrationData LoadCausal(string modelDir, IModelFamily family, ConfigReader config, int vocab, string? textFile, string? tokenFile, string? split, int samples,
        int seqLen)
    {
        CausalBlocks blocks;
        string source;
        if (tokenFile != null)
        {
            blocks = CausalBlocks.FromTokenFile(tokenFile, split!, samples, vocab);
            source = $"{Path.GetFileName(tokenFile)}:{split}.raw_blocks";
        }
        else
        {
            blocks = CausalBlocks.FromText(textFile!, family.LoadTokenizer(modelDir, config), samples, seqLen);
            source = $"{Path.GetFileName(textFile)} (causal blocks of {blocks.Length})";
        }
        return CalibrationData.Causal(Rows(blocks.Ids, blocks.Length), source);
    }

    /// <summary>Span corruption needs the T5 tokenizer's sentinels.</summary>
    private static T5Tokenizer SentencePiece(ITokenizer tokenizer, string modelDir) =>
        tokenizer as T5Tokenizer ?? throw new QmoeException($"{modelDir}: span-corruption calibration needs a T5 tokenizer with sentinels, not {tokenizer.Kind}");

    private static T[][] Rows<T>(T[] flat, int length) =>
        Enumerable.Range(0, flat.Length / length).Select(i => flat[(i * length)..((i + 1) * length)]).ToArray();
}
