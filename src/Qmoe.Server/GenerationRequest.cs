using Qmoe.Runtime;

namespace Qmoe.Server;

/// <summary>The sampling fields shared by /v1/completions and /v1/chat/completions, validated.</summary>
public sealed record GenerationRequest(int MaxTokens, SamplingOptions Sampling, IReadOnlyList<string> Stop, bool Stream, bool IncludeUsage)
{
    /// <summary>Reads max_tokens (chat also max_completion_tokens), temperature, top_p, seed, stop, n, stream and
    /// stream_options. OpenAI's defaults: temperature 1, top_p 1; max_tokens 16 for completions, the rest of the
    /// context for chat (a larger max_tokens is clamped to the context, as is the default).</summary>
    public static GenerationRequest Parse(JsonRequest r, bool chat, int? limit = null)
    {
        long? max = r.Integer("max_tokens", 1, int.MaxValue);
        if (chat) max = r.Integer("max_completion_tokens", 1, int.MaxValue) ?? max;
        if (r.Integer("n", 1, 1) is null && r.Has("n")) throw ApiError.BadRequest("only n = 1 is supported", "n");
        if (r.Has("best_of") && r.Integer("best_of", 1, 1) != 1) throw ApiError.BadRequest("only best_of = 1 is supported", "best_of");
        double temperature = r.Number("temperature", 0, 2) ?? 1.0;
        double topP = r.Number("top_p", 0, 1) ?? 1.0;
        long? seed = r.Integer("seed", long.MinValue, long.MaxValue);
        bool stream = r.Bool("stream", false);
        bool usage = false;
        if (r.Raw("stream_options") is System.Text.Json.Nodes.JsonObject so)
            usage = new JsonRequest(so).Bool("include_usage", false);
        else if (r.Has("stream_options")) throw ApiError.BadRequest("'stream_options' must be an object", "stream_options");
        // top_p = 0 keeps only the most probable token (the sampler always keeps at least one).
        var sampling = new SamplingOptions((float)temperature, (float)Math.Max(topP, 1e-6), seed);
        int maxTokens = (int)Math.Min(max ?? (chat ? int.MaxValue : 16), limit ?? int.MaxValue);
        return new GenerationRequest(maxTokens, sampling, r.Stop(), stream, usage);
    }
}
