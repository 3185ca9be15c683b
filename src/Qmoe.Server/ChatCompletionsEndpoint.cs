using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Qmoe.Text;

namespace Qmoe.Server;

/// <summary>
/// <c>POST /v1/chat/completions</c>: the conversation is rendered with the model's chat template (or the role-prefixed
/// fallback, reported in system_fingerprint) and continued, streaming (<c>chat.completion.chunk</c> events) or not.
/// </summary>
public static class ChatCompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext http, ServedModel m, int? maxTokensLimit = null)
    {
        var r = await JsonRequest.ReadAsync(new HttpRequestLike(http.Request.Body), http.RequestAborted);
        var messages = ReadMessages(r);
        var req = GenerationRequest.Parse(r, chat: true, maxTokensLimit);
        int[] ids;
        try { ids = m.EncodeChat(messages); }
        catch (QmoeException e) { throw ApiError.Unprocessable(e.Message, "messages"); }
        string id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string fingerprint = m.Fingerprint(true);
        if (!req.Stream)
        {
            var o = await GenerationRun.RunAsync(m, ids, req, null, http.RequestAborted);
            await ResponseWriter.JsonAsync(http, new JsonObject
            {
                ["id"] = id, ["object"] = "chat.completion", ["created"] = created, ["model"] = m.Id, ["system_fingerprint"] = fingerprint,
                ["choices"] = new JsonArray(new JsonObject
                {
                    ["index"] = 0,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = o.Text },
                    ["logprobs"] = null,
                    ["finish_reason"] = o.FinishReason,
                }),
                ["usage"] = ResponseWriter.Usage(o),
            });
            return;
        }
        JsonObject Chunk(JsonObject? delta, string? finish) => new()
        {
            ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = m.Id, ["system_fingerprint"] = fingerprint,
            ["choices"] = delta == null ? new JsonArray()
                : new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = null, ["finish_reason"] = finish }),
        };
        await ResponseWriter.StartEventsAsync(http);
        await ResponseWriter.EventAsync(http, Chunk(new JsonObject { ["role"] = "assistant", ["content"] = "" }, null));
        var outcome = await GenerationRun.RunAsync(m, ids, req,
            d => ResponseWriter.EventAsync(http, Chunk(new JsonObject { ["content"] = d }, null)), http.RequestAborted);
        await ResponseWriter.EventAsync(http, Chunk(new JsonObject(), outcome.FinishReason));
        if (req.IncludeUsage)
        {
            var u = Chunk(null, null);
            u["usage"] = ResponseWriter.Usage(outcome);
            await ResponseWriter.EventAsync(http, u);
        }
        await ResponseWriter.DoneAsync(http);
    }

    /// <summary>
    /// <c>messages</c>: a non-empty list of {role, content}; content is a string, null (an assistant turn with tool
    /// calls) or a list of parts of which the text parts are joined. "developer" is read as "system".
    /// </summary>
    public static List<ChatMessage> ReadMessages(JsonRequest r)
    {
        if (r.Raw("messages") is not JsonArray list || list.Count == 0)
            throw ApiError.BadRequest("'messages' must be a non-empty list", "messages");
        var result = new List<ChatMessage>();
        for (int i = 0; i < list.Count; i++)
        {
            string where = $"messages[{i}]";
            if (list[i] is not JsonObject o) throw ApiError.BadRequest($"'{where}' must be an object", where);
            var msg = new JsonRequest(o);
            string role = msg.String("role") ?? throw ApiError.BadRequest($"'{where}.role' is required", $"{where}.role");
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiError.BadRequest($"'{where}.role' = '{role}' is not one of system, developer, user, assistant, tool", $"{where}.role");
            result.Add(new ChatMessage(role == "developer" ? "system" : role, ReadContent(o["content"], $"{where}.content")));
        }
        return result;
    }

    private static string ReadContent(JsonNode? content, string where)
    {
        switch (content)
        {
            case null: return "";
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: return v.GetValue<string>();
            case JsonArray parts:
                var sb = new StringBuilder();
                foreach (var p in parts)
                {
                    if (p is not JsonObject part || part["type"] is not JsonValue t || t.GetValueKind() != JsonValueKind.String)
                        throw ApiError.BadRequest($"'{where}' parts must be objects with a 'type'", where);
                    if (t.GetValue<string>() != "text") throw ApiError.BadRequest($"'{where}': only text parts are supported", where);
                    if (part["text"] is not JsonValue text || text.GetValueKind() != JsonValueKind.String)
                        throw ApiError.BadRequest($"'{where}': a text part needs a string 'text'", where);
                    sb.Append(text.GetValue<string>());
                }
                return sb.ToString();
            default: throw ApiError.BadRequest($"'{where}' must be a string or a list of text parts", where);
        }
    }
}
