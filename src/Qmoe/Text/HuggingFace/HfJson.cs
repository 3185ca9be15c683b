using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// Typed access to the fields of a parsed <c>tokenizer.json</c>: each accessor names the file and the field's path
/// (e.g. <c>pre_tokenizer.pretokenizers[1].pattern</c>) in its one-line <see cref="QmoeException"/>.
/// </summary>
internal sealed class HfJson(string file)
{
    public string File { get; } = file;

    public QmoeException Error(string path, string message) => new(Printable($"{File}: {path}: {message}"));

    public QmoeException Unsupported(string path, string what) => new(Printable($"{File}: {path}: {what} is not supported"));

    /// <summary><paramref name="s"/> with control and line-separator characters escaped as \uXXXX, so that messages
    /// quoting the file's strings stay on one line.</summary>
    public static string Printable(string s)
    {
        if (!s.Any(IsControl)) return s;
        var sb = new System.Text.StringBuilder(s.Length + 16);
        foreach (char c in s) { if (IsControl(c)) sb.Append($"\\u{(int)c:X4}"); else sb.Append(c); }
        return sb.ToString();

        static bool IsControl(char c) => char.IsControl(c) || c is '\u2028' or '\u2029' or '\u0085';
    }

    /// <summary>The member <paramref name="name"/> of object <paramref name="obj"/>, or null when absent or JSON null.</summary>
    public static JsonElement? Optional(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public JsonElement Required(JsonElement obj, string path, string name) =>
        Optional(obj, name) ?? throw Error(Join(path, name), "missing");

    public static string Join(string path, string name) => path.Length == 0 ? name : $"{path}.{name}";

    public JsonElement Object(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Object ? e : throw Error(path, $"expected an object, found {Kind(e)}");

    public JsonElement Array(JsonElement e, string path) =>
        e.ValueKind == JsonValueKind.Array ? e : throw Error(path, $"expected an array, found {Kind(e)}");

    public string String(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.String) throw Error(path, $"expected a string, found {Kind(e)}");
        try { return e.GetString()!; }
        catch (InvalidOperationException) { throw Error(path, "string is not valid Unicode"); }
    }

    /// <summary>An object member's name (<paramref name="path"/> names the object).</summary>
    public string Name(JsonProperty p, string path)
    {
        try { return p.Name; }
        catch (InvalidOperationException) { throw Error(path, "a member name is not valid Unicode"); }
    }

    public bool Bool(JsonElement e, string path) => e.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error(path, $"expected true or false, found {Kind(e)}"),
    };

    /// <summary>A non-negative integer below <paramref name="limit"/>.</summary>
    public int Int(JsonElement e, string path, long limit = int.MaxValue)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v)) throw Error(path, $"expected an integer, found {Text(e)}");
        if (v < 0 || v >= limit) throw Error(path, $"{v} is out of range [0, {limit})");
        return (int)v;
    }

    public double Double(JsonElement e, string path)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v))
            throw Error(path, $"expected a number, found {Text(e)}");
        return v;
    }

    public string? OptionalString(JsonElement obj, string path, string name) =>
        Optional(obj, name) is { } v ? String(v, Join(path, name)) : null;

    public bool OptionalBool(JsonElement obj, string path, string name, bool fallback) =>
        Optional(obj, name) is { } v ? Bool(v, Join(path, name)) : fallback;

    /// <summary>The <c>type</c> tag of a component object.</summary>
    public string Type(JsonElement e, string path) => String(Required(Object(e, path), path, "type"), Join(path, "type"));

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    private static string Text(JsonElement e)
    {
        string raw = e.GetRawText();
        return raw.Length <= 40 ? raw : raw[..40] + "…";
    }
}
