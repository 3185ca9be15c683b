namespace Qmoe.Text.HuggingFace;

/// <summary>A <c>tokenizer.json</c> model: turns one pre-tokenized piece into ids.</summary>
internal interface IHfModel
{
    /// <summary>"hf-bpe" or "hf-unigram".</summary>
    string Kind { get; }
    /// <summary>Number of vocabulary entries (Hugging Face's <c>get_vocab_size</c>; the first id given to a new added token).</summary>
    int Count { get; }
    /// <summary>One above the largest id.</summary>
    int IdLimit { get; }
    int? UnkId { get; }
    int? TokenToId(string token);
    string? IdToToken(int id);
    /// <summary>Appends the ids of <paramref name="piece"/> (non-empty) to <paramref name="ids"/>.</summary>
    void Tokenize(string piece, List<int> ids);
}
