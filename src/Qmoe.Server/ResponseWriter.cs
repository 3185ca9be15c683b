using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Qmoe.Server;

/// <summary>Writes JSON bodies and server-sent events (<c>data: {...}</c> chunks, then <c>data: [DONE]</c>).</summary>
public static class ResponseWriter
{
    private static readonly JsonSerializerOptions Options = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Serialize(JsonNode node) => node.ToJsonString(Options);

    public static async Task JsonAsync(HttpContext http, JsonNode body, int status = 200)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(Serialize(body), http.RequestAborted);
    }

    public static async Task StartEventsAsync(HttpContext http)
    {
        http.Response.StatusCode = 200;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    public static async Task EventAsync(HttpContext http, JsonNode data)
    {
        await http.Response.WriteAsync("data: " + Serialize(data) + "\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    public static async Task DoneAsync(HttpContext http)
    {
        await http.Response.WriteAsync("data: [DONE]\n\n", http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    public static JsonObject Usage(Qmoe.Runtime.TextGenerationResult o) => new()
    {
        ["prompt_tokens"] = o.PromptTokens, ["completion_tokens"] = o.CompletionTokens, ["total_tokens"] = o.PromptTokens + o.CompletionTokens,
    };
}
