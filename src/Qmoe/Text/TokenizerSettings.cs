using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qmoe.Text;

/// <summary>
/// A checkpoint's special-token settings: <c>tokenizer_config.json</c> (add_bos_token, add_eos_token, bos/eos/pad/unk
/// tokens as strings or <c>{"content": ...}</c> objects, added_tokens_decoder) and the ids that end generation
/// (<c>generation_config.json</c>'s eos_token_id, an int or a list; else config.json's). Absent files or fields
/// leave the tokenizer's own conventions.
/// </summary>
public sealed class TokenizerSettings
{
    public bool? AddBos { get; private init; }
    public bool? AddEos { get; private init; }
    public string? BosToken { get; private init; }
    public string? EosToken { get; private init; }
    public string? PadToken { get; private init; }
    public string? UnkToken { get; private init; }
    /// <summary>added_tokens_decoder: id → token.</summary>
    public IReadOnlyDictionary<int, AddedToken> AddedTokens { get; private init; } = new Dictionary<int, AddedToken>();
    /// <summary>Ids that end generation besides the tokenizer's eos (generation_config.json, else config.json).</summary>
    public IReadOnlyList<int> GenerationEos { get; private init; } = [];
    public int? GenerationBos { get; private init; }

    public const string TokenizerConfigFile = "tokenizer_config.json", GenerationConfigFile = "generation_config.json";

    /// <summary>Reads the settings of <paramref name="dir"/>; malformed files give a one-line error naming file and field.</summary>
    public static TokenizerSettings Read(string dir)
    {
        var tc = ReadJson(Path.Combine(dir, TokenizerConfigFile));
        var gc = ReadJson(Path.Combine(dir, GenerationConfigFile)) ?? ReadJson(Path.Combine(dir, "config.json"));
        string tcPath = Path.Combine(dir, TokenizerConfigFile);
        string gcPath = File.Exists(Path.Combine(dir, GenerationConfigFile)) ? Path.Combine(dir, GenerationConfigFile) : Path.Combine(dir, "config.json");
        var added = new Dictionary<int, AddedToken>();
        if (tc?["added_tokens_decoder"] is JsonObject decoder)
            foreach (var (key, value) in decoder)
            {
                if (!int.TryParse(key, out int id) || id < 0 || value is not JsonObject token)
                    throw new QmoeException($"{tcPath}: added_tokens_decoder entry '{key}' is not an id with a token object");
                string content = TokenText(token, tcPath, $"added_tokens_decoder.{key}")
                    ?? throw new QmoeException($"{tcPath}: added_tokens_decoder.{key} has no content");
                added[id] = new AddedToken(content, Bool(token, "special", tcPath) ?? false);
            }
        return new TokenizerSettings
        {
            AddBos = Bool(tc, "add_bos_token", tcPath),
            AddEos = Bool(tc, "add_eos_token", tcPath),
            BosToken = TokenText(tc?["bos_token"], tcPath, "bos_token"),
            EosToken = TokenText(tc?["eos_token"], tcPath, "eos_token"),
            PadToken = TokenText(tc?["pad_token"], tcPath, "pad_token"),
            UnkToken = TokenText(tc?["unk_token"], tcPath, "unk_token"),
            AddedTokens = added,
            GenerationEos = Ids(gc?["eos_token_id"], gcPath, "eos_token_id"),
            GenerationBos = Ids(gc?["bos_token_id"], gcPath, "bos_token_id") is [int b, ..] ? b : null,
        };
    }

    private static JsonObject? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new QmoeException($"{path}: not a JSON object");
        }
        catch (JsonException e) { throw new QmoeException($"{path}: not valid JSON ({e.Message.ReplaceLineEndings(" ")})"); }
    }

    private static bool? Bool(JsonObject? o, string field, string path)
    {
        if (o?[field] is not JsonNode v) return null;
        return v.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new QmoeException($"{path}: field '{field}' is not a boolean"),
        };
    }

    /// <summary>A token given as a string or as an AddedToken object <c>{"content": ...}</c>; null when absent or null.</summary>
    private static string? TokenText(JsonNode? v, string path, string field) => v?.GetValueKind() switch
    {
        null or JsonValueKind.Null => null,
        JsonValueKind.String => v.GetValue<string>(),
        JsonValueKind.Object when v["content"]?.GetValueKind() == JsonValueKind.String => v["content"]!.GetValue<string>(),
        _ => throw new QmoeException($"{path}: field '{field}' is neither a token string nor an object with a 'content' string"),
    };

    /// <summary>An id or a list of ids (null → none).</summary>
    private static List<int> Ids(JsonNode? v, string path, string field)
    {
        List<int> ids = [];
        if (v == null) return ids;
        foreach (var item in v is JsonArray a ? a.ToArray() : [v])
        {
            if (item?.GetValueKind() != JsonValueKind.Number || !item.AsValue().TryGetValue(out int id) || id < 0)
                throw new QmoeException($"{path}: field '{field}' is not a token id or a list of token ids");
            ids.Add(id);
        }
        return ids;
    }
}
