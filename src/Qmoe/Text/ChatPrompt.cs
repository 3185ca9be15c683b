using Qmoe.Text.Templates;

namespace Qmoe.Text;

/// <summary>
/// Turns a conversation into the prompt text a model expects: its <c>chat_template</c> from
/// <c>tokenizer_config.json</c> rendered as Hugging Face does, or, where the model has none, a plain
/// role-prefixed format ("role: content" lines, then "assistant:"), which <see cref="UsesTemplate"/> reports.
/// A template writes bos and other special tokens itself, so its output is tokenized without added special tokens
/// (as transformers' apply_chat_template does); the fallback is encoded like a plain prompt.
/// </summary>
public sealed class ChatPrompt
{
    private readonly ChatTemplate? _template;

    private ChatPrompt(ChatTemplate? template) { _template = template; }

    /// <summary>The model's template, or the fallback where <paramref name="modelDir"/> has none.</summary>
    public static ChatPrompt Load(string modelDir) => new(ChatTemplate.Load(modelDir));

    public static ChatPrompt Fallback { get; } = new(null);

    public bool UsesTemplate => _template != null;

    /// <summary>Prompt ids of a conversation: a template's rendering without added special tokens, the fallback's
    /// with them when <paramref name="plainPromptSpecialTokens"/> (as a plain prompt of the model is encoded).</summary>
    public int[] Encode(IReadOnlyList<ChatMessage> messages, ITokenizer tokenizer, bool plainPromptSpecialTokens) =>
        tokenizer.Encode(Render(messages), addSpecialTokens: !UsesTemplate && plainPromptSpecialTokens);

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        if (messages.Count == 0) throw new QmoeException("the conversation has no messages");
        if (_template != null) return _template.Render(messages, addGenerationPrompt);
        var sb = new System.Text.StringBuilder();
        foreach (var m in messages) sb.Append(m.Role).Append(": ").Append(m.Content).Append('\n');
        if (addGenerationPrompt) sb.Append("assistant:");
        return sb.ToString();
    }
}
