using Qmoe.Models;
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
            default:
                throw new QmoeException($"{config.Path}: model_type '{config.ModelType}' is not supported (switch_transformers)");
        }
    }

    /// <summary>The model's SentencePiece tokenizer; ids above its pieces are T5 sentinels.</summary>
    public static T5Tokenizer LoadTokenizer(string dir, int vocabSize)
    {
        int pieces = T5Tokenizer.Load(dir, 0).PieceCount;
        if (vocabSize < pieces) throw new QmoeException($"{dir}: vocab_size {vocabSize} is smaller than the tokenizer's {pieces} pieces");
        return T5Tokenizer.Load(dir, vocabSize - pieces);
    }
}
