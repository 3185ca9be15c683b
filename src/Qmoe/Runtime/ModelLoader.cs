using Qmoe.Codec;
using Qmoe.Models;
using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>
/// Opens a model directory as its family (<see cref="ModelFamilies"/>, by config.json's model_type): a Hugging Face checkpoint, or a compressed
/// directory whose experts run from their codes through the fused kernels (nothing is decompressed at load).
/// </summary>
public static class ModelLoader
{
    /// <param name="kernel">for compressed models: builds the expert kernel from the decode table (e.g. on a GPU); null = the CPU kernel</param>
    public static IRunnableModel Open(string dir, Func<Kernels.DecodeTable, Kernels.ICompressedMatVec>? kernel = null)
    {
        if (!Directory.Exists(dir)) throw new QmoeException($"{dir}: model directory not found");
        var config = ConfigReader.Load(dir);
        var family = ModelFamilies.For(config);
        family.Validate(config);
        if (!CompressedModel.IsCompressed(dir)) return family.Open(dir, config);
        // Every sparse layer (by tensor prefix) gets its experts running from the codes; the model owns the store.
        var layout = family.ExpertLayout(config);
        var experts = new CompressedExperts(dir, kernel);
        try
        {
            return family.Open(dir, config, (prefix, count) => layout.CreateExperts(count, (e, kind) => experts.Weight(prefix, kind, e)), experts);
        }
        catch { experts.Dispose(); throw; }
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
