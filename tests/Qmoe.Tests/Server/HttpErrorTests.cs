using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Qmoe.Server;

namespace Qmoe.Tests.Server;

/// <summary>
/// Bad HTTP requests get OpenAI-style error bodies with the right status, never a crash: malformed JSON, wrong
/// types, huge or negative numbers, unknown fields (accepted), a 10 MB prompt (413), missing or wrong API keys (401),
/// prompts beyond the context (422). Plus /health, /v1/models and /metrics. Runs on the embedded switch-tiny-8.
/// </summary>
public class HttpErrorTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static async Task<(HttpStatusCode Status, JsonNode? Body)> Post(HttpClient http, string path, string body, string? key = null,
        CancellationToken cancel = default)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key != null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var resp = await http.SendAsync(req, cancel);
        string text = await resp.Content.ReadAsStringAsync();
        return (resp.StatusCode, text.Length > 0 && text[0] == '{' ? JsonNode.Parse(text) : null);
    }

    private static void AssertError(HttpStatusCode expected, (HttpStatusCode Status, JsonNode? Body) r, string? param = null)
    {
        Assert.Equal(expected, r.Status);
        var e = r.Body!["error"]!;
        Assert.False(string.IsNullOrEmpty(e["message"]!.GetValue<string>()));
        Assert.DoesNotContain('\n', e["message"]!.GetValue<string>());
        Assert.NotNull(e["type"]);
        if (param != null) Assert.Equal(param, e["param"]!.GetValue<string>());
    }

    [Fact]
    public async Task MalformedRequestsAreRefusedWithOpenAIErrors()
    {
        await using var s = await TestServer.StartAsync(Paths.TinyModel);
        var h = s.Http;
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{not json"));
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "[1,2]"));
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{}"), "prompt");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": 5}"), "prompt");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 1000000000000}"), "max_tokens");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": -5}"), "max_tokens");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"max_tokens\": 1e400}"), "max_tokens");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"temperature\": -1}"), "temperature");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"top_p\": \"x\"}"), "top_p");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"n\": 3}"), "n");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", "{\"prompt\": \"a\", \"stop\": [1]}"), "stop");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/chat/completions", "{\"messages\": []}"), "messages");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}"), "messages[0].role");
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": {}}]}"), "messages[0].content");
        AssertError(HttpStatusCode.NotFound, await Post(h, "/v1/embeddings", "{}"));
        // Nesting beyond the parser's depth limit is a 400, not a stack overflow.
        AssertError(HttpStatusCode.BadRequest, await Post(h, "/v1/completions", new string('[', 100_000)));

        // Unknown fields are ignored; the request is served.
        var ok = await Post(h, "/v1/completions", "{\"prompt\": \"In the beginning\", \"max_tokens\": 3, \"temperature\": 0, \"frobnicate\": {\"a\": [1]}, \"logit_bias\": {}}");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Equal("text_completion", ok.Body!["object"]!.GetValue<string>());

        Assert.Equal(413, await TenMegabytePromptStatus(s.Server.BaseAddress));
        Assert.Empty(s.Log);
    }

    /// <summary>
    /// Posts a 10 MB prompt over a raw socket, sending only its first 64 KB: the server answers 413 from the
    /// Content-Length alone, before reading the body (an HTTP client sending all of it would see the connection
    /// closed under it, as Kestrel closes after refusing).
    /// </summary>
    private static async Task<int> TenMegabytePromptStatus(Uri server)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var stream = tcp.GetStream();
        int length = (10 << 20) + 14;
        var head = $"POST /v1/completions HTTP/1.1\r\nHost: {server.Host}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{\"prompt\": \"";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head + new string('a', 64 << 10)));
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var status = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(1));
        return int.Parse(status!.Split(' ')[1]);
    }

    [Fact]
    public async Task ContextLimitsAreEnforced()
    {
        await using var s = await TestServer.StartAsync(Paths.TinyModel);
        // A huge max_tokens within int range is clamped to what the model serves (the request completes).
        var r = await Post(s.Http, "/v1/completions", "{\"prompt\": \"In the beginning\", \"max_tokens\": 2147483647, \"temperature\": 0, \"stop\": [\",\", \".\", \"<\"]}");
        Assert.Equal(HttpStatusCode.OK, r.Status);
    }

    [Fact]
    public async Task SwitchPromptBeyondTheEncoderLimitIs422()
    {
        // T5's relative positions set no context limit, but the encoder's cost grows with the square of the prompt:
        // the server refuses prompts beyond SwitchBatchDecoder.MaxEncoderTokens instead of holding the batch for minutes.
        await using var s = await TestServer.StartAsync(Paths.TinyModel);
        var prompt = string.Join(' ', Enumerable.Repeat("word", 3000));
        AssertError(HttpStatusCode.UnprocessableEntity, await Post(s.Http, "/v1/completions", new JsonObject { ["prompt"] = prompt, ["max_tokens"] = 2 }.ToJsonString()));
    }

    [FixtureFact("mixtral-tiny-8")]
    public async Task PromptBeyondTheContextIs422()
    {
        await using var s = await TestServer.StartAsync(Paths.Fixture("mixtral-tiny-8")!);
        var prompt = string.Join(' ', Enumerable.Repeat("word", 2000)); // well beyond max_position_embeddings 512
        AssertError(HttpStatusCode.UnprocessableEntity, await Post(s.Http, "/v1/completions", new JsonObject { ["prompt"] = prompt }.ToJsonString()));
    }

    [Fact]
    public async Task ApiKeyIsRequiredWhenSet()
    {
        await using var s = await TestServer.StartAsync(Paths.TinyModel, new ServerOptions { ApiKey = "sekrit" });
        const string body = "{\"prompt\": \"In the beginning\", \"max_tokens\": 2}";
        AssertError(HttpStatusCode.Unauthorized, await Post(s.Http, "/v1/completions", body));
        AssertError(HttpStatusCode.Unauthorized, await Post(s.Http, "/v1/completions", body, "wrong"));
        Assert.Equal(HttpStatusCode.OK, (await Post(s.Http, "/v1/completions", body, "sekrit")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await s.Http.GetAsync("/metrics")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/health")).StatusCode);
    }

    [Fact]
    public async Task ModelsHealthAndMetrics()
    {
        await using var s = await TestServer.StartAsync(Paths.TinyModel);
        var models = JsonNode.Parse(await s.Http.GetStringAsync("/v1/models"))!;
        Assert.Equal("switch-tiny-8", models["data"]![0]!["id"]!.GetValue<string>());
        Assert.Equal("ok", JsonNode.Parse(await s.Http.GetStringAsync("/health"))!["status"]!.GetValue<string>());
        await Post(s.Http, "/v1/completions", "{\"prompt\": \"In the beginning\", \"max_tokens\": 4, \"temperature\": 0}");
        await Post(s.Http, "/v1/completions", "{bad");
        string metrics = await s.Http.GetStringAsync("/metrics");
        Assert.Contains("qmoe_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 1", metrics);
        Assert.Contains("qmoe_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1", metrics);
        foreach (var name in new[] { "qmoe_generated_tokens_total", "qmoe_tokens_per_second", "qmoe_queue_depth", "qmoe_batch_occupancy", "qmoe_batch_active" })
            Assert.Contains($"# TYPE {name} ", metrics);
    }

    [Fact]
    public async Task MutatedRequestBodiesNeverCrashTheServer()
    {
        // Fuzz: mutations of valid bodies (CI: 200; QMOE_FUZZ_ITERATIONS for more). Every answer is 200 or a 4xx with
        // an error body; none is a 500, and the server keeps answering.
        int iterations = int.TryParse(Environment.GetEnvironmentVariable("QMOE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 200;
        await using var s = await TestServer.StartAsync(Paths.TinyModel, new ServerOptions { MaxTokensLimit = 8 });
        var rnd = new Random(7);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var statuses = new SortedDictionary<int, int>();
        string[] seeds =
        [
            "{\"prompt\": \"In the beginning\", \"max_tokens\": 2, \"temperature\": 0.5, \"top_p\": 0.9, \"seed\": 3, \"stop\": [\".\"]}",
            "{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}, {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"hi\"}]}], \"max_tokens\": 2, \"stream\": false}",
        ];
        for (int i = 0; i < iterations; i++)
        {
            int which = rnd.Next(seeds.Length);
            string body = JsonFuzz.Mutate(seeds[which], rnd);
            // Requests are capped at 8 tokens (well under a second even on a busy machine): a minute without an answer is a hang.
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(1));
            (HttpStatusCode Status, JsonNode? Body) r;
            try { r = await Post(s.Http, which == 0 ? "/v1/completions" : "/v1/chat/completions", body, cancel: cts.Token); }
            catch (OperationCanceledException) { Assert.Fail($"iteration {i}: no answer within a minute for {body}"); return; }
            statuses[(int)r.Status] = statuses.GetValueOrDefault((int)r.Status) + 1;
            Assert.True(r.Status == HttpStatusCode.OK || ((int)r.Status is >= 400 and < 500 && r.Body?["error"] != null),
                $"iteration {i}: {(int)r.Status} for {body}");
        }
        Assert.Empty(s.Log);
        Assert.Equal(HttpStatusCode.OK, (await s.Http.GetAsync("/health")).StatusCode);
        output.WriteLine($"{iterations} mutated bodies in {clock.Elapsed.TotalSeconds:F1} s; statuses {string.Join(", ", statuses.Select(p => $"{p.Key}: {p.Value}"))}; " +
            $"peak working set {System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64 >> 20} MiB");
    }
}
