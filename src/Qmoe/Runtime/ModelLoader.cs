using Qmoe.Models;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Switch;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>Opens a model directory (Hugging Face checkpoint or compressed) as the right family from its config.json.</summary>
public static class ModelLoader
{
    public static IRunnableModel Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new QmoeException($"{dir}: model directory not found");
        var config = ConfigReader.Load(dir);
        switch (config.ModelType)
        {
            case "switch_transformers":
                var cfg = SwitchConfig.From(config);
                var tokenizer = LoadTokenizer(dir, cfg.VocabSize);
                return new SwitchRunnable(SwitchModel.Load(dir), tokenizer);
            case "mixtral":
                var mcfg = MixtralConfig.From(config);
                return new MixtralRunnable(MixtralModel.Load(dir), LoadDecoderOnlyTokenizer(dir, mcfg.VocabSize));
            default:
                throw new QmoeException($"{config.Path}: model_type '{config.ModelType}' is not supported (switch_transformers, mixtral)");
        }
    }

    /// <summary>T5 and Switch checkpoints have 100 sentinels <c>&lt;extra_id_0..99&gt;</c> above the SentencePiece pieces.</summary>
    public const int T5Sentinels = 100;

    /// <summary>
    /// A T5/Switch model's tokenizer: the pieces plus 100 sentinels, which must fit in the vocabulary (HF pads
    /// vocab_size beyond them, e.g. 32000 + 100 ≤ 32128).
    /// </summary>
    public static T5Tokenizer LoadTokenizer(string dir, int vocabSize)
    {
        var tokenizer = T5Tokenizer.Load(dir, T5Sentinels);
        if (tokenizer.VocabSize > vocabSize)
            throw new QmoeException($"{dir}: the tokenizer's {tokenizer.PieceCount} pieces + {T5Sentinels} sentinels exceed vocab_size {vocabSize}");
        return tokenizer;
    }

    /// <summary>A decoder-only model's tokenizer: the SentencePiece pieces only (no sentinels), within the vocabulary.</summary>
    public static T5Tokenizer LoadDecoderOnlyTokenizer(string dir, int vocabSize)
    {
        var tokenizer = T5Tokenizer.Load(dir, sentinelCount: 0);
        if (tokenizer.VocabSize > vocabSize)
            throw new QmoeException($"{dir}: the tokenizer's {tokenizer.PieceCount} pieces exceed vocab_size {vocabSize}");
        return tokenizer;
    }
}
