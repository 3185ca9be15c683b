using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Qmoe.Server;

/// <summary>
/// The OpenAI-compatible HTTP server of <c>qmoe serve</c> (Kestrel): <c>POST /v1/completions</c>,
/// <c>POST /v1/chat/completions</c>, <c>GET /v1/models</c>, <c>GET /health</c>, <c>GET /metrics</c>. Every failure is
/// answered with an OpenAI-style error body: 400 malformed or invalid fields, 401 missing or wrong bearer key,
/// 413 body over the limit, 422 a valid request the model cannot serve (prompt beyond the context, a conversation
/// the chat template refuses), 429 queue full, 500 an internal error (one line; the trace only with verbose).
/// </summary>
public sealed class QmoeServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServerMetrics _metrics;

    public ServedModel Model { get; }
    /// <summary>e.g. http://127.0.0.1:8080 (the port chosen when 0 was asked).</summary>
    public Uri BaseAddress { get; }
    /// <summary>Receives one line per internal error (500) and, with verbose, its trace.</summary>
    public Action<string>? Log { get; set; }
    public bool Verbose { get; set; }

    private QmoeServer(WebApplication app, ServedModel model, ServerMetrics metrics, Uri address)
    {
        _app = app; Model = model; _metrics = metrics; BaseAddress = address;
    }

    /// <summary>Starts serving <paramref name="model"/> (which the server then owns) and returns once listening.</summary>
    public static async Task<QmoeServer> StartAsync(ServedModel model, ServerOptions options, Action<string>? log = null, bool verbose = false)
    {
        options.Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
            if (options.Host == "localhost") k.ListenLocalhost(options.Port);
            else k.Listen(IPAddress.Parse(options.Host), options.Port);
        });
        var app = builder.Build();
        var metrics = new ServerMetrics(model.Scheduler);
        QmoeServer? server = null;
        app.Use(async (http, next) =>
        {
            string endpoint = http.Request.Path.Value ?? "/";
            try
            {
                if (options.ApiKey != null && endpoint != "/health" && !Authorized(http, options.ApiKey))
                    throw new ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')", "authentication_error", null, "invalid_api_key");
                if (model.Scheduler.QueueDepth >= options.MaxQueue && http.Request.Method == "POST")
                    throw new ApiError(429, $"{options.MaxQueue} requests are already waiting; retry later", "rate_limit_error", null, "queue_full");
                await next(http);
            }
            catch (Exception e) when (!http.Response.HasStarted)
            {
                var (status, body) = server!.Describe(e, http);
                http.Response.Clear();
                await ResponseWriter.JsonAsync(http, body, status);
            }
            catch (Exception e) when (e is not OperationCanceledException || !http.RequestAborted.IsCancellationRequested)
            {
                // Headers are out (a stream was running): report in the stream, then end it.
                var (_, body) = server!.Describe(e, http);
                try { await ResponseWriter.EventAsync(http, body); } catch (Exception) { /* client gone */ }
            }
            catch (OperationCanceledException) { /* the client went away */ }
            finally { metrics.CountRequest(KnownEndpoint(endpoint), http.RequestAborted.IsCancellationRequested ? 499 : http.Response.StatusCode); }
        });
        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/v1/models", (HttpContext http) => ResponseWriter.JsonAsync(http, new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = model.Id, ["object"] = "model", ["created"] = model.Created, ["owned_by"] = "qmoe" }),
        }));
        app.MapGet("/metrics", () => Results.Text(metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapPost("/v1/completions", (HttpContext http) => CompletionsEndpoint.HandleAsync(http, model, options.MaxTokensLimit));
        app.MapPost("/v1/chat/completions", (HttpContext http) => ChatCompletionsEndpoint.HandleAsync(http, model, options.MaxTokensLimit));
        app.MapFallback((HttpContext http) => throw new ApiError(404, $"no route {http.Request.Method} {http.Request.Path}", "invalid_request_error", null, "not_found"));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server = new QmoeServer(app, model, metrics, new Uri(address)) { Log = log, Verbose = verbose };
        return server;
    }

    private static string KnownEndpoint(string path) =>
        path is "/health" or "/metrics" or "/v1/models" or "/v1/completions" or "/v1/chat/completions" ? path : "other";

    private static bool Authorized(HttpContext http, string key)
    {
        string header = http.Request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        if (!header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()), Encoding.UTF8.GetBytes(key));
    }

    /// <summary>Status and OpenAI error body of any exception.</summary>
    private (int Status, JsonObject Body) Describe(Exception e, HttpContext http)
    {
        switch (e)
        {
            case ApiError a: return (a.Status, a.Body());
            case BadHttpRequestException b when b.StatusCode == StatusCodes.Status413PayloadTooLarge:
                return (413, ApiError.Body($"the request body exceeds the server's limit", "invalid_request_error", null, "request_too_large"));
            case BadHttpRequestException b: return (b.StatusCode, ApiError.Body(b.Message, "invalid_request_error", null, null));
            case QmoeException q: return (422, ApiError.Body(q.Message, "invalid_request_error", null, null));
            case OperationCanceledException: return (499, ApiError.Body("the request was cancelled", "invalid_request_error", null, "cancelled"));
            default:
                Log?.Invoke($"error: internal: {http.Request.Method} {http.Request.Path}: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
                if (Verbose) Log?.Invoke(e.ToString());
                return (500, ApiError.Body($"internal error ({e.GetType().Name})", "server_error", null, null));
        }
    }

    /// <summary>Waits until the host stops (Ctrl+C or <paramref name="cancel"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancel = default) => _app.WaitForShutdownAsync(cancel);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _metrics.Dispose();
        Model.Dispose();
    }
}
