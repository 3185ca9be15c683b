using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Qmoe.Server;

/// <summary><c>POST /v1/completions</c>: a text prompt continued (OpenAI's legacy completions API), streaming or not.</summary>
public static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http, ServedModel m, int? maxTokensLimit = null)
    {
        var r = await JsonRequest.ReadAsync(new HttpRequestLike(http.Request.Body), http.RequestAborted);
        var prompt = ReadPrompt(r);
        var req = GenerationRequest.Parse(r, chat: false, maxTokensLimit);
        var ids = m.EncodePrompt(prompt);
        string id = "cmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        JsonObject Chunk(string text, string? finish) => new()
        {
            ["id"] = id, ["object"] = "text_completion", ["created"] = created, ["model"] = m.Id, ["system_fingerprint"] = m.Fingerprint(false),
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["text"] = text, ["logprobs"] = null, ["finish_reason"] = finish }),
        };
        if (!req.Stream)
        {
            var o = await GenerationRun.RunAsync(m, ids, req, null, http.RequestAborted);
            var body = Chunk(o.Text, o.FinishReason);
            body["usage"] = ResponseWriter.Usage(o);
            await ResponseWriter.JsonAsync(http, body);
            return;
        }
        // Validation errors above still get a JSON error; from here on errors go into the stream.
        await ResponseWriter.StartEventsAsync(http);
        var outcome = await GenerationRun.RunAsync(m, ids, req, d => ResponseWriter.EventAsync(http, Chunk(d, null)), http.RequestAborted);
        await ResponseWriter.EventAsync(http, Chunk("", outcome.FinishReason));
        if (req.IncludeUsage)
        {
            var u = Chunk("", null);
            u["choices"] = new JsonArray();
            u["usage"] = ResponseWriter.Usage(outcome);
            await ResponseWriter.EventAsync(http, u);
        }
        await ResponseWriter.DoneAsync(http);
    }

    /// <summary>The prompt: a string, or a list holding exactly one string.</summary>
    private static string ReadPrompt(JsonRequest r)
    {
        var p = r.Raw("prompt") ?? throw ApiError.BadRequest("'prompt' is required", "prompt");
        if (p is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String) return v.GetValue<string>();
        if (p is JsonArray a && a.Count == 1 && a[0] is JsonValue s && s.GetValueKind() == System.Text.Json.JsonValueKind.String) return s.GetValue<string>();
        throw ApiError.BadRequest("'prompt' must be a string (or a list of one string)", "prompt");
    }
}
