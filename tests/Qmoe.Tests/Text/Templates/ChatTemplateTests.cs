using System.Text.Json.Nodes;
using Qmoe.Text;
using Qmoe.Text.Templates;

namespace Qmoe.Tests.Text.Templates;

/// <summary>
/// The fixtures' real chat templates render exactly as the official @huggingface/jinja renders them
/// (tests/data/chat-templates/expected.json, made by tools/chat-templates/render.mjs), plus the Jinja features
/// they rely on, checked on small templates.
/// </summary>
public class ChatTemplateTests
{
    private static JsonObject Expected() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Paths.TestData, "chat-templates", "expected.json")))!.AsObject();

    [FixtureFact("tokenizers")]
    public void FixtureTemplatesRenderAsHuggingFaceJinja()
    {
        int compared = 0;
        foreach (var t in Expected()["templates"]!.AsArray())
        {
            string config = t!["config"]!.GetValue<string>();
            string dir = Path.GetDirectoryName(Path.Combine(Paths.Fixtures!, config))!;
            var template = ChatTemplate.Load(dir);
            Assert.Equal(t["has_template"]!.GetValue<bool>(), template != null);
            if (template == null) continue;
            foreach (var c in t["cases"]!.AsArray())
            {
                var messages = c!["messages"]!.AsArray().Select(m => new ChatMessage(m!["role"]!.GetValue<string>(), m["content"]!.GetValue<string>())).ToList();
                bool addPrompt = c["add_generation_prompt"]!.GetValue<bool>();
                if (c["expected"] is JsonValue expected)
                    Assert.Equal(expected.GetValue<string>(), template.Render(messages, addPrompt));
                else
                {
                    var e = Assert.Throws<TemplateRaisedException>(() => template.Render(messages, addPrompt));
                    Assert.Contains(c["error"]!.GetValue<string>(), e.Message);
                }
                compared++;
            }
        }
        Assert.True(compared >= 24, $"only {compared} renderings compared");
    }

    [Fact]
    public void ChatTemplateJinjaWinsOverTheConfigsTemplate()
    {
        // transformers: a chat_template.jinja beside tokenizer_config.json replaces the config's chat_template; the
        // special tokens still come from the config.
        using var tmp = Paths.Temp();
        File.WriteAllText(tmp.File("tokenizer_config.json"), """{"chat_template": "config", "bos_token": "<s>"}""");
        Assert.Equal("config", ChatTemplate.Load(tmp.Path)!.Render([new ChatMessage("user", "x")], false));
        File.WriteAllText(tmp.File(ChatTemplate.TemplateFile), "{{ bos_token }}file {{ messages[0]['content'] }}");
        Assert.Equal("<s>file x", ChatTemplate.Load(tmp.Path)!.Render([new ChatMessage("user", "x")], false));
        // Without a config the file alone is the template; bad bytes or syntax are refused in one line naming it.
        File.Delete(tmp.File("tokenizer_config.json"));
        Assert.Equal("file x", ChatTemplate.Load(tmp.Path)!.Render([new ChatMessage("user", "x")], false));
        File.WriteAllBytes(tmp.File(ChatTemplate.TemplateFile), [0x7B, 0x7B, 0xFF, 0x7D, 0x7D]);
        Assert.Contains("chat_template.jinja: not valid UTF-8", Assert.Throws<QmoeException>(() => ChatTemplate.Load(tmp.Path)).Message);
        File.WriteAllText(tmp.File(ChatTemplate.TemplateFile), "{% if %}");
        Assert.Contains("chat_template.jinja:", Assert.Throws<QmoeException>(() => ChatTemplate.Load(tmp.Path)).Message);
    }

    private static string Render(string source, string json = "{}")
    {
        var vars = (Dictionary<string, object?>)TemplateValues.FromJson(JsonNode.Parse(json))!;
        return TemplateEvaluator.Render(TemplateParser.Parse(source), vars);
    }

    [Theory]
    // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
    [InlineData("{% if true %}\n  a\n{% endif %}\nb", "  a\nb")]
    [InlineData("x\n    {% if true %}y{% endif %}", "x\ny")]
    [InlineData("{{ 'a' }}\n{{ 'b' }}", "a\nb")]
    [InlineData("a  {%- if true -%}  b  {%- endif %}", "ab")]
    [InlineData("a {{- 'b' -}} c", "abc")]
    [InlineData("{# note #}\nx", "x")]
    [InlineData("x\n", "x")]
    [InlineData("{%+ if true %}y{% endif %}", "y")]
    // expressions
    [InlineData("{{ 1 + 2 * 3 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }}", "7 3 2 3.5")]
    [InlineData("{{ 'a' ~ 1 ~ none }}", "a1None")]
    [InlineData("{{ not none is defined }}", "False")]
    [InlineData("{{ [1,2,3][1:] }} {{ 'abc'[-1] }} {{ 'hello'[:-1] }} {{ [1,2,3][::-1] }}", "[2, 3] c hell [3, 2, 1]")]
    [InlineData("{{ 'x' if false else 'y' }}{{ 'z' if true }}", "yz")]
    [InlineData("{{ 2 in [1,2] }} {{ 'b' in 'abc' }} {{ 3 not in [1] }}", "True True True")]
    [InlineData("{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "6")]
    [InlineData("{% set n = 0 %}{% for i in [1,2] %}{% set n = n + i %}{% endfor %}{{ n }}", "0")]
    [InlineData("{% for x in [1,2,3] if x != 2 %}{{ loop.index }}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", "11,23")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }};{% endfor %}", "a=1;b=2;")]
    [InlineData("{% for x in [] %}a{% else %}empty{% endfor %}", "empty")]
    [InlineData("{{ ' a '|trim }}|{{ [1,2]|length }}|{{ 5|string + '!' }}|{{ {'a': [1, 'x\"']}|tojson }}", "a|2|5!|{\"a\": [1, \"x\\\"\"]}")]
    [InlineData("{% macro m(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}", "<1B><23>")]
    [InlineData("{{ 'Hello'.upper() }} {{ ' x '.strip() }} {{ 'a,b'.split(',') }} {{ 'ab'.startswith('a') }}", "HELLO x ['a', 'b'] True")]
    public void JinjaFeaturesRenderAsJinja2(string source, string expected) => Assert.Equal(expected, Render(source));

    [Fact]
    public void VariablesFiltersAndTestsOnMessages()
    {
        const string json = """{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u1"},{"role":"assistant","content":"a"},{"role":"user","content":"u2"}]}""";
        Assert.Equal("u1,u2", Render("{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join(',') }}", json));
        Assert.Equal("True", Render("{{ messages[-1] == (messages|selectattr('role', 'equalto', 'user')|list)[-1] }}", json));
        Assert.Equal("s|3", Render("{{ messages[0]['content'] }}|{{ messages[1:]|length }}", json));
        Assert.Equal("yes", Render("{% if messages[0].tool_calls is not defined and messages[0].content is string %}yes{% endif %}", json));
        Assert.Equal("", Render("{{ undefined_thing }}{{ messages[9] }}"));
    }

    [Theory]
    [InlineData("{% if %}", "chat template")]
    [InlineData("{% for x in y %}", "endfor")]
    [InlineData("{{ 'a' + 1 }}", "unsupported operands")]
    [InlineData("{{ x|nosuchfilter }}", "nosuchfilter")]
    [InlineData("{% while true %}", "while")]
    [InlineData("{{ raise_exception('bad conversation') }}", "bad conversation")]
    [InlineData("{{ 'ab' * 100000000 }}", "longer than")]
    [InlineData("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "evaluation steps")]
    [InlineData("{{ 1 // 0 }}", "division by zero")]
    public void BadTemplatesAreRefusedWithOneLine(string source, string expected)
    {
        var e = Assert.ThrowsAny<QmoeException>(() => Render(source));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ConfigTemplateListPicksDefaultAndReadsAddedTokens()
    {
        var cfg = JsonNode.Parse("""
            {"bos_token": {"content": "<B>", "lstrip": false}, "eos_token": "</E>",
             "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}]}
            """);
        var t = ChatTemplate.FromConfig(cfg, "tokenizer_config.json")!;
        Assert.Equal("<B>hi</E>", t.Render([new ChatMessage("user", "hi")], true));
        Assert.Null(ChatTemplate.FromConfig(JsonNode.Parse("{\"chat_template\": null}"), "x"));
        Assert.Throws<QmoeException>(() => ChatTemplate.FromConfig(JsonNode.Parse("{\"chat_template\": 5}"), "x"));
        Assert.Throws<QmoeException>(() => ChatTemplate.FromConfig(JsonNode.Parse("{\"chat_template\": [{\"name\": \"x\", \"template\": \"y\"}]}"), "x"));
    }

    [Fact]
    public void FallbackFormatIsRolePrefixed()
    {
        var p = ChatPrompt.Fallback;
        Assert.False(p.UsesTemplate);
        Assert.Equal("system: s\nuser: u\nassistant:", p.Render([new("system", "s"), new("user", "u")]));
    }
}
