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
        try { return v.GetValue<double>(); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        { throw new QmoeException($"{Path}: field '{field}' is not a number"); }
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
}
