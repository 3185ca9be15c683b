using System.Text.Json.Nodes;

namespace Qmoe.Server;

/// <summary>
/// A request that cannot be served, with its HTTP status and an OpenAI-style body
/// <c>{"error": {"message", "type", "param", "code"}}</c>.
/// </summary>
public sealed class ApiError(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public static ApiError BadRequest(string message, string? param = null, string? code = null) => new(400, message, "invalid_request_error", param, code);
    public static ApiError Unprocessable(string message, string? param = null, string? code = null) => new(422, message, "invalid_request_error", param, code);

    public JsonObject Body() => Body(Message, Type, Param, Code);

    public static JsonObject Body(string message, string type, string? param, string? code) => new()
    {
        ["error"] = new JsonObject { ["message"] = message.ReplaceLineEndings(" "), ["type"] = type, ["param"] = param, ["code"] = code },
    };
}
