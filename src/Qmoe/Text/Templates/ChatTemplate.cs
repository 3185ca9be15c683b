using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qmoe.Text.Templates;

/// <summary>
/// A model's chat template (<c>chat_template</c> in <c>tokenizer_config.json</c>: a Jinja string, or a list of
/// <c>{name, template}</c> of which "default" is used), rendered as transformers' <c>apply_chat_template</c> does:
/// variables <c>messages</c>, <c>add_generation_prompt</c>, <c>tools</c> = <c>documents</c> = none, and the special
/// tokens the config sets (<c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c>, <c>pad_token</c>).
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>tokenizer_config.json files above this size are refused before reading (real ones: under a few MB).</summary>
    public const long MaxConfigBytes = 64L << 20;

    private readonly IReadOnlyList<Node> _template;
    private readonly Dictionary<string, string> _specialTokens;

    public string Source { get; }

    public ChatTemplate(string source, IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        Source = source;
        _template = TemplateParser.Parse(source);
        _specialTokens = specialTokens?.ToDictionary(p => p.Key, p => p.Value) ?? new();
    }

    /// <summary>The file transformers saves a template to (since 4.5x), which wins over tokenizer_config.json's <c>chat_template</c>.</summary>
    public const string TemplateFile = "chat_template.jinja";

    /// <summary>
    /// The template of <paramref name="modelDir"/> as transformers loads it: <see cref="TemplateFile"/> when present (it
    /// replaces any template in the config), else tokenizer_config.json's <c>chat_template</c>; the special tokens come
    /// from tokenizer_config.json either way. Null when there is no template.
    /// </summary>
    public static ChatTemplate? Load(string modelDir)
    {
        string path = Path.Combine(modelDir, TokenizerSettings.TokenizerConfigFile), file = Path.Combine(modelDir, TemplateFile);
        JsonObject? config = File.Exists(path) ? ReadConfig(path) : null;
        if (File.Exists(file))
        {
            string source;
            try { source = new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(ReadBounded(file)); }
            catch (System.Text.DecoderFallbackException) { throw new QmoeException($"{file}: not valid UTF-8"); }
            return Create(source, config == null ? new() : SpecialTokens(config, path), file);
        }
        return config == null ? null : FromConfig(config, path);
    }

    /// <summary>The bytes of a template or config file, refused above <see cref="MaxConfigBytes"/> before reading.</summary>
    private static byte[] ReadBounded(string path)
    {
        if (new FileInfo(path).Length > MaxConfigBytes) throw new QmoeException($"{path}: larger than {MaxConfigBytes >> 20} MiB");
        return File.ReadAllBytes(path);
    }

    private static JsonObject ReadConfig(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(ReadBounded(path), documentOptions: new JsonDocumentOptions { MaxDepth = 256 }); }
        catch (JsonException e) { throw new QmoeException($"{path}: not valid JSON ({OneLine(e.Message)})"); }
        catch (ArgumentException e) { throw new QmoeException($"{path}: not valid UTF-8 JSON ({OneLine(e.Message)})"); }
        return root as JsonObject ?? throw new QmoeException($"{path}: not a JSON object");
    }

    /// <summary>The template of a parsed tokenizer_config.json (<paramref name="path"/> names it in errors).</summary>
    public static ChatTemplate? FromConfig(JsonNode? root, string path)
    {
        if (root is not JsonObject cfg) throw new QmoeException($"{path}: not a JSON object");
        if (!cfg.TryGetPropertyValue("chat_template", out var t) || t == null) return null;
        string source;
        if (t is JsonValue v && v.GetValueKind() == JsonValueKind.String) source = v.GetValue<string>();
        else if (t is JsonArray list)
        {
            string? found = null;
            foreach (var item in list)
            {
                if (item is not JsonObject o || o["name"] is not JsonValue n || n.GetValueKind() != JsonValueKind.String
                    || o["template"] is not JsonValue tv || tv.GetValueKind() != JsonValueKind.String)
                    throw new QmoeException($"{path}: chat_template list entries must be {{\"name\": string, \"template\": string}}");
                if (n.GetValue<string>() == "default") found = tv.GetValue<string>();
            }
            source = found ?? throw new QmoeException($"{path}: chat_template has no template named \"default\"");
        }
        else throw new QmoeException($"{path}: chat_template must be a string or a list of {{name, template}}");
        return Create(source, SpecialTokens(cfg, path), path);
    }

    /// <summary>The special tokens a template sees (<c>bos_token</c>, <c>eos_token</c>, <c>unk_token</c>, <c>pad_token</c>) as the config sets them.</summary>
    private static Dictionary<string, string> SpecialTokens(JsonObject cfg, string path)
    {
        var special = new Dictionary<string, string>();
        foreach (var name in new[] { "bos_token", "eos_token", "unk_token", "pad_token" })
            if (TokenText(cfg[name], path, name) is string s) special[name] = s;
        return special;
    }

    private static ChatTemplate Create(string source, Dictionary<string, string> special, string path)
    {
        try { return new ChatTemplate(source, special); }
        catch (QmoeException e) { throw new QmoeException($"{path}: {e.Message}"); }
    }

    /// <summary>A special token's text: a string, or an AddedToken object's <c>content</c>; null when unset.</summary>
    private static string? TokenText(JsonNode? node, string path, string field) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonObject o when o["content"] is JsonValue c && c.GetValueKind() == JsonValueKind.String => c.GetValue<string>(),
        _ => throw new QmoeException($"{path}: {field} must be a string or an object with a string 'content'"),
    };

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, object? tools = null)
    {
        var vars = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["tools"] = tools,
            ["documents"] = null,
        };
        foreach (var (k, v) in _specialTokens) vars[k] = v;
        return TemplateEvaluator.Render(_template, vars);
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
