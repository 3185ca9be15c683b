using Microsoft.Extensions.AI;
using Qmoe.Extensions.AI;

namespace Qmoe.Tests.Server;

/// <summary>The IChatClient over an in-process model: GetResponseAsync and GetStreamingResponseAsync give the greedy output of generate.</summary>
public class ChatClientTests
{
    private static async Task RespondsAsGenerate(string modelDir)
    {
        using var client = QmoeChatClient.Open(modelDir, maxBatch: 4);
        using var reference = Qmoe.Runtime.ModelLoader.Open(modelDir);
        var prompt = Qmoe.Text.ChatPrompt.Load(modelDir);
        var messages = new List<ChatMessage> { new(ChatRole.System, "Be brief."), new(ChatRole.User, "In the beginning") };
        var ids = prompt.Encode([new("system", "Be brief."), new("user", "In the beginning")], reference.Tokenizer, !reference.IsDecoderOnly);
        var newIds = GreedyReference.NewIds(reference, ids, 10);
        string expected = reference.Tokenizer.Decode(newIds);
        var options = new ChatOptions { MaxOutputTokens = 10, Temperature = 0 };

        var response = await client.GetResponseAsync(messages, options);
        Assert.Equal(expected, response.Text);
        Assert.Equal(newIds.Length, response.Usage!.OutputTokenCount);
        Assert.Equal(newIds.Length == 10 ? ChatFinishReason.Length : ChatFinishReason.Stop, response.FinishReason);

        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in client.GetStreamingResponseAsync(messages, options)) updates.Add(u);
        Assert.Equal(expected, string.Concat(updates.Select(u => u.Text)));
        Assert.Equal(response.FinishReason, updates[^1].FinishReason);
        Assert.Equal(expected, updates.ToChatResponse().Text);
        Assert.NotNull(client.GetService<ChatClientMetadata>());
    }

    [Fact]
    public Task SwitchRespondsAsGenerate() => RespondsAsGenerate(Paths.TinyModel);

    [FixtureFact("mixtral-tiny-8")]
    public Task MixtralRespondsAsGenerate() => RespondsAsGenerate(Paths.Fixture("mixtral-tiny-8")!);
}
