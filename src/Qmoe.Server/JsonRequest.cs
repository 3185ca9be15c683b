using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qmoe.Server;

/// <summary>
/// Typed reads of a request body's fields with OpenAI-style 400 errors naming the field. Unknown fields are ignored
/// (clients send many); a field of the wrong type or out of range is refused.
/// </summary>
public sealed class JsonRequest(JsonObject body)
{
    public JsonObject Body { get; } = body;

    public static async Task<JsonRequest> ReadAsync(HttpRequestLike request, CancellationToken cancel)
    {
        JsonNode? node;
        try { node = await JsonNode.ParseAsync(request.Body, documentOptions: new JsonDocumentOptions { MaxDepth = 64 }, cancellationToken: cancel); }
        catch (JsonException e) { throw ApiError.BadRequest($"the body is not valid JSON ({e.Message})"); }
        catch (ArgumentException e) { throw ApiError.BadRequest($"the body is not valid UTF-8 JSON ({e.Message})"); }
        return node is JsonObject o ? new JsonRequest(o) : throw ApiError.BadRequest("the body must be a JSON object");
    }

    private JsonNode? Field(string name) => Body.TryGetPropertyValue(name, out var v) ? v : null;

    public bool Has(string name) => Field(name) != null;

    public JsonNode? Raw(string name) => Field(name);

    public string? String(string name)
    {
        var v = Field(name);
        if (v == null) return null;
        return v is JsonValue s && s.GetValueKind() == JsonValueKind.String ? s.GetValue<string>() : throw ApiError.BadRequest($"'{name}' must be a string", name);
    }

    public bool Bool(string name, bool fallback)
    {
        var v = Field(name);
        if (v == null) return fallback;
        return v.GetValueKind() switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiError.BadRequest($"'{name}' must be a boolean", name),
        };
    }

    public double? Number(string name, double min, double max)
    {
        var v = Field(name);
        if (v == null) return null;
        if (v is not JsonValue n || n.GetValueKind() != JsonValueKind.Number || !n.TryGetValue<double>(out double d))
            throw ApiError.BadRequest($"'{name}' must be a number", name);
        if (!(d >= min && d <= max)) throw ApiError.BadRequest($"'{name}' = {d} must be in [{min}, {max}]", name);
        return d;
    }

    public long? Integer(string name, long min, long max)
    {
        var v = Field(name);
        if (v == null) return null;
        if (v is not JsonValue n || n.GetValueKind() != JsonValueKind.Number)
            throw ApiError.BadRequest($"'{name}' must be an integer", name);
        if (!n.TryGetValue<long>(out long l))
        {
            // Integral but beyond 64 bits, or fractional.
            if (n.TryGetValue<double>(out double d) && Math.Floor(d) == d) throw ApiError.BadRequest($"'{name}' = {d} must be in [{min}, {max}]", name);
            throw ApiError.BadRequest($"'{name}' must be an integer", name);
        }
        if (l < min || l > max) throw ApiError.BadRequest($"'{name}' = {l} must be in [{min}, {max}]", name);
        return l;
    }

    /// <summary>OpenAI's <c>stop</c>: a string or a list of up to 4 strings.</summary>
    public IReadOnlyList<string> Stop()
    {
        var v = Field("stop");
        if (v == null) return Array.Empty<string>();
        if (v is JsonValue s && s.GetValueKind() == JsonValueKind.String) return new[] { s.GetValue<string>() };
        if (v is JsonArray a && a.Count <= 4 && a.All(x => x is JsonValue e && e.GetValueKind() == JsonValueKind.String))
            return a.Select(x => x!.GetValue<string>()).ToArray();
        throw ApiError.BadRequest("'stop' must be a string or a list of at most 4 strings", "stop");
    }
}

/// <summary>What <see cref="JsonRequest.ReadAsync"/> needs of a request: its body stream.</summary>
public readonly record struct HttpRequestLike(Stream Body);
