using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>Reads a <c>tokenizer.json</c> vocabulary object (token → id) with the checks qmoe needs before allocating.</summary>
internal static class HfVocabulary
{
    /// <summary>Largest id accepted for a vocabulary of <paramref name="count"/> entries: ids may have gaps, but not so
    /// many that the id table would dwarf the file.</summary>
    public static long IdLimit(long count) => 4 * count + 1024;

    /// <summary>
    /// The token → id map (a repeated token keeps its last id, as Hugging Face's map does) and the id → token table
    /// (length = largest id + 1; null where no token has that id). Two tokens with one id are refused.
    /// </summary>
    public static Dictionary<string, int> ParseMap(HfJson json, JsonElement e, string path, long fileLength, out string?[] idToToken)
    {
        json.Object(e, path);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        long limit = IdLimit(Math.Min(fileLength, int.MaxValue / 8));
        foreach (var p in e.EnumerateObject())
        {
            string token = json.Name(p, path);
            vocab[token] = json.Int(p.Value, $"{path}[\"{(token.Length <= 40 ? token : token[..40] + "…")}\"]", limit);
        }
        int maxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
        if (maxId >= IdLimit(vocab.Count))
            throw json.Error(path, $"largest id {maxId} is too sparse for {vocab.Count} entries");
        idToToken = new string?[maxId + 1];
        foreach (var (token, id) in vocab)
        {
            if (idToToken[id] != null) throw json.Error(path, $"id {id} is given to both \"{idToToken[id]}\" and \"{token}\"");
            idToToken[id] = token;
        }
        return vocab;
    }
}
