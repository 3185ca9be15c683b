using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qmoe.Models;

/// <summary>
/// Reads a Hugging Face config.json and picks the model family from <c>model_type</c>. Helpers here read
/// typed fields with one-line errors naming the file and the field.
/// </summary>
public sealed class ConfigReader
{
    public string Path { get; }
    public JsonObject Json { get; }

    private ConfigReader(string path, JsonObject json) { Path = path; Json = json; }

    public static ConfigReader Load(string modelDir)
    {
        string path = System.IO.Path.Combine(modelDir, "config.json");
        if (!File.Exists(path)) throw new QmoeException($"{modelDir}: no config.json (not a Hugging Face model directory)");
        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) is JsonObject o
                ? new ConfigReader(path, o)
                : throw new QmoeException($"{path}: not a JSON object");
        }
        catch (JsonException e) { throw new QmoeException($"{path}: not valid JSON ({e.Message})"); }
    }

    /// <summary>A config already in memory; <paramref name="source"/> names it in error messages.</summary>
    public static ConfigReader FromJson(JsonObject json, string source) => new(source, json);

    public string ModelType => String("model_type");

    /// <summary>Bounds on counts that size arrays before any tensor is read (layers, experts, heads): far above
    /// any real model (DeepSeek-V3: 61 layers, 256 experts; Switch-C: 2048 experts), so a config cannot make the
    /// loader allocate 2^31 of anything.</summary>
    public const int MaxLayers = 4096, MaxExperts = 1 << 16;

    /// <summary>Refuses <paramref name="value"/> of <paramref name="field"/> above <paramref name="max"/>.</summary>
    public void CheckAtMost(string field, int value, int max)
    {
        if (value > max) throw new QmoeException($"{Path}: {field} = {value} exceeds the supported maximum {max}");
    }

    public bool Has(string field) => Json.TryGetPropertyValue(field, out var v) && v != null;

    public int Int(string field, int? fallback = null)
    {
        if (!Json.TryGetPropertyValue(field, out var v) || v == null)
            return fallback ?? throw new QmoeException($"{Path}: missing field '{field}'");
        try
        {
            int x = v.GetValue<int>();
            return x >= 0 ? x : throw new QmoeException($"{Path}: field '{field}' = {x} must not be negative");
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        { throw new QmoeException($"{Path}: field '{field}' is not an integer"); }
    }

    public double Double(string field, double? fallback = null)
    {
        if (!Json.TryGetPropertyValue(field, out var v) || v == null)
            return fallback ?? throw new QmoeException($"{Path}: missing field '{field}'");
        // Parsed JSON gives doubles from any number; configs built in memory may hold ints.
        if (v is JsonValue jv)
        {
            if (jv.TryGetValue<double>(out var d)) return d;
            if (jv.TryGetValue<int>(out var i)) return i;
            if (jv.TryGetValue<long>(out var l)) return l;
        }
        throw new QmoeException($"{Path}: field '{field}' is not a number");
    }

    public bool Bool(string field, bool fallback)
    {
        if (!Json.TryGetPropertyValue(field, out var v) || v == null) return fallback;
        try { return v.GetValue<bool>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        { throw new QmoeException($"{Path}: field '{field}' is not a boolean"); }
    }

    public string String(string field, string? fallback = null)
    {
        if (!Json.TryGetPropertyValue(field, out var v) || v == null)
            return fallback ?? throw new QmoeException($"{Path}: missing field '{field}'");
        try { return v.GetValue<string>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        { throw new QmoeException($"{Path}: field '{field}' is not a string"); }
    }

    /// <summary>A nested object as a reader of its own (errors name "file: field"), or null when absent or null.</summary>
    public ConfigReader? Object(string field)
    {
        if (!Json.TryGetPropertyValue(field, out var v) || v == null) return null;
        return v is JsonObject o ? new ConfigReader($"{Path}: {field}", o) : throw new QmoeException($"{Path}: field '{field}' is not an object");
    }

    /// <summary>An integer field that may be null (e.g. DeepSeek's q_lora_rank); null when absent.</summary>
    public int? NullableInt(string field) => Has(field) ? Int(field) : null;

    /// <summary>An integer or a list of integers (e.g. eos_token_id); empty when absent or null.</summary>
    public int[] IntOrList(string field)
    {
        if (!Json.TryGetPropertyValue(field, out var v) || v == null) return [];
        if (v is not JsonArray a) return [Int(field)];
        try { return a.Select(e => e?.GetValue<int>() ?? throw new InvalidOperationException()).ToArray(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        { throw new QmoeException($"{Path}: field '{field}' is not a list of integers"); }
    }

    /// <summary>Refuses any of the named values that is not positive.</summary>
    public void RequirePositive(params (string Field, int Value)[] values)
    {
        foreach (var (field, v) in values)
            if (v <= 0) throw new QmoeException($"{Path}: {field} = {v} must be positive");
    }

    /// <summary>
    /// Refuses what none of the decoder-only runtimes implements, naming the field: a hidden_act other than SiLU,
    /// attention biases, and tied input/output embeddings.
    /// </summary>
    public void RefuseUnsupportedDecoderFields()
    {
        string act = String("hidden_act", "silu");
        if (act != "silu") throw new QmoeException($"{Path}: hidden_act = {act} is not supported (only silu)");
        if (Bool("attention_bias", false)) throw new QmoeException($"{Path}: attention_bias = true is not supported");
        if (Bool("tie_word_embeddings", false)) throw new QmoeException($"{Path}: tie_word_embeddings = true is not supported (untied lm_head only)");
    }

    /// <summary>Grouped-query attention with rotary embeddings: heads a multiple of the KV heads, head_dim even.</summary>
    public void CheckGroupedQueryAttention(int heads, int kvHeads, int headDim)
    {
        if (heads % kvHeads != 0)
            throw new QmoeException($"{Path}: num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");
        if (headDim % 2 != 0) throw new QmoeException($"{Path}: head_dim {headDim} must be even for rotary embeddings");
    }

    /// <summary>
    /// Every id that ends generation: config.json's <c>eos_token_id</c> and generation_config.json's (each an id or a
    /// list), in that order, without repeats. An empty <paramref name="modelDir"/> (a config held in memory) reads config.json's only.
    /// </summary>
    public int[] EosTokenIds(string modelDir)
    {
        var ids = IntOrList("eos_token_id").ToList();
        string gen = System.IO.Path.Combine(modelDir, "generation_config.json");
        if (modelDir.Length > 0 && File.Exists(gen))
        {
            JsonNode? node;
            try { node = JsonNode.Parse(File.ReadAllText(gen)); }
            catch (JsonException e) { throw new QmoeException($"{gen}: not valid JSON ({e.Message})"); }
            if (node is JsonObject o) ids.AddRange(new ConfigReader(gen, o).IntOrList("eos_token_id"));
        }
        return ids.Distinct().ToArray();
    }
}
