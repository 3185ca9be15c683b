namespace Qmoe.Server;

/// <summary>Settings of <c>qmoe serve</c>.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind; loopback by default (nothing outside the machine can connect).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (see <see cref="QmoeServer.BaseAddress"/>).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>Sequences decoded together per step (continuous batching).</summary>
    public int MaxBatch { get; init; } = 16;
    /// <summary>When set, every /v1 and /metrics request needs <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Request bodies above this are refused with 413 before they are read.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;
    /// <summary>Requests waiting for a batch slot beyond this are refused with 429.</summary>
    public int MaxQueue { get; init; } = 1024;
    /// <summary>Most tokens one request may generate (max_tokens above it is clamped); null = the model's context.</summary>
    public int? MaxTokensLimit { get; init; }
    /// <summary>The model id clients see (/v1/models, responses); default: the model directory's name.</summary>
    public string? ModelId { get; init; }

    public void Validate()
    {
        if (Port is < 0 or > 65535) throw new QmoeException($"--port {Port} must be in [0, 65535]");
        if (MaxBatch is < 1 or > 256) throw new QmoeException($"--max-batch {MaxBatch} must be in [1, 256]");
        if (MaxBodyBytes < 1024) throw new QmoeException($"--max-body-bytes {MaxBodyBytes} must be at least 1024");
        if (MaxTokensLimit is < 1) throw new QmoeException($"--max-tokens-limit {MaxTokensLimit} must be positive");
        if (ApiKey is { Length: 0 }) throw new QmoeException("--api-key must not be empty");
        if (!System.Net.IPAddress.TryParse(Host, out _) && Host != "localhost")
            throw new QmoeException($"--host {Host} must be an IP address or localhost");
    }
}
