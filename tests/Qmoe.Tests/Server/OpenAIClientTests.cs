using System.ClientModel;
using System.Text;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using Qmoe.Text;

namespace Qmoe.Tests.Server;

/// <summary>
/// The official OpenAI .NET client against <c>qmoe serve</c> on loopback: chat completions, streaming and not, give
/// token for token the greedy output of <c>generate</c> (same prompt ids, same new ids). The client has no public
/// legacy-completions API (its LegacyCompletionClient is internal), so /v1/completions is driven with plain HTTP.
/// The embedded switch-tiny-8 runs in CI; mixtral-tiny-8 (decoder-only) when the fixtures are present.
/// </summary>
public class OpenAIClientTests
{
    private const int MaxTokens = 12;

    private static OpenAIClientOptions Options(TestServer s) => new() { Endpoint = new Uri(s.Server.BaseAddress, "/v1") };

    private static async Task ChatMatchesGenerate(string modelDir)
    {
        await using var s = await TestServer.StartAsync(modelDir);
        var client = new ChatClient(s.Server.Model.Id, new ApiKeyCredential("unused"), Options(s));
        var conversation = new List<OpenAI.Chat.ChatMessage> { new SystemChatMessage("Be brief."), new UserChatMessage("The LORD is my shepherd") };
        // generate on the rendered conversation: the fallback format is encoded like a plain prompt.
        var ids = s.Server.Model.Chat.Encode([new("system", "Be brief."), new("user", "The LORD is my shepherd")], s.Reference.Tokenizer, !s.Reference.IsDecoderOnly);
        var newIds = GreedyReference.NewIds(s.Reference, ids, MaxTokens);
        string expected = s.Reference.Tokenizer.Decode(newIds);

        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = MaxTokens };
        ChatCompletion c = await client.CompleteChatAsync(conversation, options);
        Assert.Equal(expected, c.Content[0].Text);
        Assert.Equal(newIds.Length, c.Usage.OutputTokenCount);
        Assert.Equal(ids.Length, c.Usage.InputTokenCount);
        Assert.Equal(newIds.Length == MaxTokens ? ChatFinishReason.Length : ChatFinishReason.Stop, c.FinishReason);
        Assert.Contains("fallback", c.SystemFingerprint);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        await foreach (var u in client.CompleteChatStreamingAsync(conversation, options))
        {
            foreach (var part in u.ContentUpdate) streamed.Append(part.Text);
            finish ??= u.FinishReason;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(c.FinishReason, finish);
    }

    [Fact]
    public Task SwitchChatMatchesGenerate() => ChatMatchesGenerate(Paths.TinyModel);

    [FixtureFact("mixtral-tiny-8")]
    public Task MixtralChatMatchesGenerate() => ChatMatchesGenerate(Paths.Fixture("mixtral-tiny-8")!);

    private static async Task CompletionsMatchGenerate(string modelDir, string prompt)
    {
        await using var s = await TestServer.StartAsync(modelDir);
        string expected = GreedyReference.Completion(s.Reference, prompt, MaxTokens);
        foreach (bool stream in new[] { false, true })
        {
            var body = new JsonObject { ["model"] = s.Server.Model.Id, ["prompt"] = prompt, ["max_tokens"] = MaxTokens, ["temperature"] = 0, ["stream"] = stream };
            using var resp = await s.Http.PostAsync("/v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
            Assert.True(resp.IsSuccessStatusCode);
            string raw = await resp.Content.ReadAsStringAsync();
            string text = stream ? ConcatEvents(raw) : JsonNode.Parse(raw)!["choices"]![0]!["text"]!.GetValue<string>();
            Assert.Equal(expected, text);
        }
    }

    /// <summary>The text of a completions event stream: every <c>data:</c> chunk's choices[0].text, up to [DONE].</summary>
    public static string ConcatEvents(string sse)
    {
        var sb = new StringBuilder();
        bool done = false;
        foreach (var line in sse.Split('\n'))
        {
            if (!line.StartsWith("data: ")) continue;
            string data = line["data: ".Length..];
            if (data == "[DONE]") { done = true; break; }
            var choices = JsonNode.Parse(data)!["choices"]!.AsArray();
            if (choices.Count > 0) sb.Append(choices[0]!["text"]!.GetValue<string>());
        }
        Assert.True(done, "stream did not end with data: [DONE]");
        return sb.ToString();
    }

    [Fact]
    public Task SwitchCompletionsMatchGenerate() => CompletionsMatchGenerate(Paths.TinyModel, "The LORD is my shepherd; I shall not <extra_id_0>.");

    [FixtureFact("mixtral-tiny-8")]
    public Task MixtralCompletionsMatchGenerate() => CompletionsMatchGenerate(Paths.Fixture("mixtral-tiny-8")!, "And God said, Let there be");

    [FixtureFact("mixtral-tiny-8")]
    public async Task ConcurrentChatRequestsEachMatchTheirSequentialTwin()
    {
        await using var s = await TestServer.StartAsync(Paths.Fixture("mixtral-tiny-8")!);
        var client = new ChatClient(s.Server.Model.Id, new ApiKeyCredential("unused"), Options(s));
        string[] questions = ["In the beginning", "Blessed are", "The quick brown fox", "man ls", "And it came to pass", "Vanity of vanities"];
        var tasks = questions.Select(q => client.CompleteChatAsync([new UserChatMessage(q)], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 8 })).ToArray();
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < questions.Length; i++)
        {
            var ids = s.Server.Model.Chat.Encode([new("user", questions[i])], s.Reference.Tokenizer, !s.Reference.IsDecoderOnly);
            Assert.Equal(s.Reference.Tokenizer.Decode(GreedyReference.NewIds(s.Reference, ids, 8)), results[i].Value.Content[0].Text);
        }
    }
}
