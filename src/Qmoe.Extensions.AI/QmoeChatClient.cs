using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Microsoft.Extensions.AI;
using Qmoe.Runtime;
using Qmoe.Text;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qmoe.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> over a model loaded in process: conversations are rendered with the model's chat
/// template (or the role-prefixed fallback) and decoded through a <see cref="BatchScheduler"/>, so concurrent calls
/// share decode steps. ChatOptions: MaxOutputTokens (default: the rest of the context), Temperature (default 0:
/// greedy), TopP, Seed, StopSequences. The client owns the model.
/// </summary>
public sealed class QmoeChatClient : IChatClient
{
    private readonly IRunnableModel _model;
    private readonly BatchScheduler _scheduler;
    private readonly ChatPrompt _prompt;
    private readonly ChatClientMetadata _metadata;

    public QmoeChatClient(IRunnableModel model, string modelDir, int maxBatch = 8)
    {
        var decoder = model.CreateBatchDecoder() ?? throw new QmoeException($"{modelDir}: the {model.Family} family has no multi-sequence decoder");
        _model = model;
        _prompt = ChatPrompt.Load(modelDir);
        _scheduler = new BatchScheduler(decoder, maxBatch);
        _metadata = new ChatClientMetadata("qmoe", null, Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd(Path.DirectorySeparatorChar)));
    }

    /// <summary>Opens <paramref name="modelDir"/> (Hugging Face or compressed) and serves it.</summary>
    public static QmoeChatClient Open(string modelDir, int maxBatch = 8)
    {
        var model = ModelLoader.Open(modelDir);
        try { return new QmoeChatClient(model, modelDir, maxBatch); }
        catch { model.Dispose(); throw; }
    }

    /// <summary>True when the model's own chat template is used (false: the role-prefixed fallback).</summary>
    public bool UsesChatTemplate => _prompt.UsesTemplate;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var r = await RunAsync(messages, options, null, cancellationToken);
        return new ChatResponse(new AiChatMessage(ChatRole.Assistant, r.Text))
        {
            FinishReason = Finish(r.FinishReason),
            ModelId = _metadata.DefaultModelId,
            Usage = new UsageDetails { InputTokenCount = r.PromptTokens, OutputTokenCount = r.CompletionTokens, TotalTokenCount = r.PromptTokens + r.CompletionTokens },
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var deltas = Channel.CreateUnbounded<string>();
        string responseId = Guid.NewGuid().ToString("N");
        var run = Task.Run(async () =>
        {
            try { return await RunAsync(messages, options, d => deltas.Writer.WriteAsync(d, cancellationToken).AsTask(), cancellationToken); }
            finally { deltas.Writer.TryComplete(); }
        }, cancellationToken);
        await foreach (var d in deltas.Reader.ReadAllAsync(cancellationToken))
            yield return new ChatResponseUpdate(ChatRole.Assistant, d) { ResponseId = responseId, ModelId = _metadata.DefaultModelId };
        var r = await run;
        yield return new ChatResponseUpdate
        {
            Role = ChatRole.Assistant, ResponseId = responseId, ModelId = _metadata.DefaultModelId, FinishReason = Finish(r.FinishReason),
            Contents = [new UsageContent(new UsageDetails { InputTokenCount = r.PromptTokens, OutputTokenCount = r.CompletionTokens, TotalTokenCount = r.PromptTokens + r.CompletionTokens })],
        };
    }

    private Task<TextGenerationResult> RunAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options, Func<string, Task>? onDelta, CancellationToken cancel)
    {
        var conversation = messages.Select(m => new Qmoe.Text.ChatMessage(m.Role.Value, m.Text)).ToList();
        var ids = _prompt.Encode(conversation, _model.Tokenizer, !_model.IsDecoderOnly);
        var sampling = new SamplingOptions(options?.Temperature ?? 0f, options?.TopP ?? 1f, options?.Seed);
        return TextGeneration.RunAsync(_scheduler, _model.Tokenizer, _model.EosIds, ids, options?.MaxOutputTokens ?? int.MaxValue, sampling,
            options?.StopSequences?.ToArray() ?? Array.Empty<string>(), onDelta, cancel);
    }

    private static ChatFinishReason Finish(string reason) => reason == "length" ? ChatFinishReason.Length : ChatFinishReason.Stop;

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey == null && serviceType == typeof(ChatClientMetadata) ? _metadata
        : serviceKey == null && serviceType.IsInstanceOfType(this) ? this
        : null;

    public void Dispose()
    {
        _scheduler.Dispose();
        _model.Dispose();
    }
}
