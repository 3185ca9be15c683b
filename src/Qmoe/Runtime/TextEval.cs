using Qmoe.Text;

namespace Qmoe.Runtime;

/// <summary>
/// Eval data made from a raw text file (<c>eval --text</c>; metric in docs/SPEC.md). Decoder-only: the file's lines
/// joined with "\n" (no trailing newline), tokenized as one string with the model's special-token settings (a bos at
/// the start only where the tokenizer config adds one), cut into consecutive blocks of <c>block</c> tokens (a partial
/// last block dropped), at most <c>maxBlocks</c> of them (0: all); the evaluator scores tokens 1..block−1 of each block from the
/// tokens before them in the block. Encoder-decoders: span-corruption examples as the calibration loader makes them
/// (paragraphs + eos, blocks of 141 ids, seed <see cref="CalibrationSet.DefaultSeed"/>), at most <c>maxBlocks</c>.
/// The split is named after the file.
/// </summary>
public static class TextEval
{
    public static EvalSet Load(IRunnableModel model, string path, int block, int maxBlocks)
    {
        if (!File.Exists(path)) throw new QmoeException($"{path}: text file not found");
        if (block < 2) throw new QmoeException($"--block {block}: blocks need at least 2 tokens");
        if (maxBlocks < 0) throw new QmoeException($"--max-blocks {maxBlocks}: must be positive, or 0 for every block of the file");
        if (maxBlocks == 0) maxBlocks = int.MaxValue;
        string split = Path.GetFileNameWithoutExtension(path);
        return model.IsDecoderOnly ? Causal(model.Tokenizer, path, split, block, maxBlocks) : SpanCorrupted(model, path, split, maxBlocks);
    }

    /// <summary>The decoder-only ids of a text file: lines joined with "\n", encoded as one prompt.</summary>
    public static int[] CausalIds(ITokenizer tokenizer, string path) =>
        PromptEncoding.Encode(tokenizer, string.Join("\n", File.ReadAllLines(path)), decoderOnly: true);

    private static EvalSet Causal(ITokenizer tokenizer, string path, string split, int block, int maxBlocks)
    {
        int[] ids = CausalIds(tokenizer, path);
        int count = Math.Min(maxBlocks, ids.Length / block);
        if (count == 0) throw new QmoeException($"{path}: {ids.Length} tokens, too few for one block of {block}");
        var blocks = new int[count][];
        for (int b = 0; b < count; b++) blocks[b] = ids[(b * block)..((b + 1) * block)];
        return EvalSet.FromRawBlocks(split, blocks);
    }

    private static EvalSet SpanCorrupted(IRunnableModel model, string path, string split, int maxBlocks)
    {
        if (model.Tokenizer is not T5Tokenizer t5) throw new QmoeException($"{path}: span corruption needs a T5 tokenizer with sentinels");
        var corruption = new SpanCorruption(141);
        TokenBlocks.Build(t5, TokenBlocks.ReadParagraphs(path), corruption.RawLength, maxBlocks, out int made);
        if (made == 0) throw new QmoeException($"{path}: text too short for one block of {corruption.RawLength} tokens");
        var set = CalibrationSet.FromText(path, t5, made, CalibrationSet.DefaultSeed, corruption);
        int[][] Rows(int[] flat, int length) => Enumerable.Range(0, flat.Length / length).Select(i => flat[(i * length)..((i + 1) * length)]).ToArray();
        return EvalSet.FromSpanCorruption(split, Rows(set.InputIds, set.InputLength), Rows(set.Labels, set.LabelLength));
    }
}
