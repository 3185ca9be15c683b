namespace Qmoe.Text;

/// <summary>
/// A model's tokenizer, whatever its kind (SentencePiece unigram or BPE, Hugging Face <c>tokenizer.json</c>).
/// Implementations are immutable and thread-safe.
/// </summary>
public interface ITokenizer
{
    /// <summary>Short name of the kind, e.g. "sentencepiece-unigram", "sentencepiece-bpe", "hf-bpe", "hf-unigram".</summary>
    string Kind { get; }
    /// <summary>Every id the tokenizer produces or accepts is below this (pieces plus added tokens).</summary>
    int VocabSize { get; }
    /// <summary>The special ids (bos, eos list, pad, unk) as the checkpoint defines them.</summary>
    SpecialTokens Special { get; }
    /// <summary>Ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/> the tokens the tokenizer adds
    /// by default (Hugging Face's <c>add_special_tokens=True</c>: a BOS for Llama/Mistral/DeepSeek, an EOS for T5).</summary>
    int[] Encode(string text, bool addSpecialTokens);
    /// <summary>Text of <paramref name="ids"/>; <paramref name="skipSpecialTokens"/> drops special tokens as
    /// Hugging Face's <c>decode(skip_special_tokens=True)</c> does.</summary>
    string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = true);
}

/// <summary>Special token ids; null where the tokenizer has none. <see cref="Eos"/> lists every id that ends
/// generation (tokenizer eos plus <c>generation_config.json</c>'s <c>eos_token_id</c> list).</summary>
public sealed record SpecialTokens(int? Bos, IReadOnlyList<int> Eos, int? Pad, int? Unk);
