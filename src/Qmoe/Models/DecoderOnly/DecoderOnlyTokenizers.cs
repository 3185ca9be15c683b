using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Models.DecoderOnly;

/// <summary>A decoder-only checkpoint's tokenizer from the files it has: tokenizer.json, else spiece.model (e.g. synth checkpoints).</summary>
public static class DecoderOnlyTokenizers
{
    public static ITokenizer Load(string dir, int vocabSize)
    {
        if (File.Exists(Path.Combine(dir, "spiece.model"))) return ModelLoader.LoadDecoderOnlyTokenizer(dir, vocabSize);
        throw new QmoeException($"{dir}: no spiece.model (Hugging Face tokenizer.json is not supported by this build)");
    }
}
