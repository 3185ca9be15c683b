using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Server;

/// <summary>
/// A loaded model as the server serves it: its batch scheduler (continuous batching over the family's
/// <see cref="IBatchDecoder"/>), its chat prompt format, and the id clients use.
/// </summary>
public sealed class ServedModel : IDisposable
{
    public IRunnableModel Model { get; }
    public BatchScheduler Scheduler { get; }
    public ChatPrompt Chat { get; }
    public string Id { get; }
    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>Takes ownership of <paramref name="model"/>.</summary>
    public ServedModel(IRunnableModel model, string modelDir, int maxBatch, string? id = null)
    {
        Model = model;
        var decoder = model.CreateBatchDecoder()
            ?? throw new QmoeException($"{modelDir}: the {model.Family} family has no multi-sequence decoder; it cannot be served");
        Chat = ChatPrompt.Load(modelDir);
        Id = id ?? Path.GetFileName(Path.GetFullPath(modelDir).TrimEnd(Path.DirectorySeparatorChar));
        Scheduler = new BatchScheduler(decoder, maxBatch);
    }

    /// <summary>Responses' system_fingerprint; chat responses say when the role-prefixed fallback replaced a template.</summary>
    public string Fingerprint(bool chat) =>
        chat && !Chat.UsesTemplate ? $"qmoe-{Model.Family}-fallback-role-prefixed-no-chat-template" : $"qmoe-{Model.Family}";

    /// <summary>Prompt ids of a completion prompt: as <c>generate</c> encodes it (an eos for encoder-decoders).</summary>
    public int[] EncodePrompt(string prompt) => Model.Tokenizer.Encode(prompt, addSpecialTokens: !Model.IsDecoderOnly);

    /// <summary>Prompt ids of a conversation: the rendered template without added special tokens (the template writes them).</summary>
    public int[] EncodeChat(IReadOnlyList<ChatMessage> messages) => Chat.Encode(messages, Model.Tokenizer, !Model.IsDecoderOnly);

    public void Dispose()
    {
        Scheduler.Dispose();
        Model.Dispose();
    }
}
