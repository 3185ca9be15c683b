namespace Qmoe.Text;

/// <summary>
/// Decoding what a model generated. A model's vocabulary (its embedding and head rows) may be larger than its
/// tokenizer's: checkpoints pad it to a multiple of 64 or 128 (T5: 32,128 rows for 32,100 tokens; Qwen3: 151,936 for
/// 151,669), and a synthetic checkpoint pairs a 32,000-row head with a small SentencePiece model. An id that no token
/// has has no text: Hugging Face's fast tokenizers drop it when decoding, and so does this, instead of ending the
/// generation with an error. A tokenizer's own <see cref="ITokenizer.Decode"/> still refuses such ids (for ids a user
/// typed, an error is the right answer).
/// </summary>
public static class GeneratedIds
{
    /// <summary>Text of generated <paramref name="ids"/>, ids outside the tokenizer's [0, VocabSize) dropped.</summary>
    public static string DecodeGenerated(this ITokenizer tokenizer, ReadOnlySpan<int> ids, bool skipSpecialTokens = true)
    {
        int vocab = tokenizer.VocabSize;
        foreach (int id in ids)
            if ((uint)id >= (uint)vocab)
            {
                var kept = new List<int>(ids.Length);
                foreach (int k in ids) if ((uint)k < (uint)vocab) kept.Add(k);
                return tokenizer.Decode(kept.ToArray(), skipSpecialTokens);
            }
        return tokenizer.Decode(ids, skipSpecialTokens);
    }
}
