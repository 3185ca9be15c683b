using System.Text.Json.Nodes;
using Qmoe.Runtime;
using Qmoe.Text;

namespace Qmoe.Cli;

/// <summary>
/// The demo's fill comparison: for each fixed prompt, the top-3 next tokens (with probabilities) at every
/// <c>&lt;extra_id_k&gt;</c> span and the greedy fill after it, for an encoder-decoder; for a decoder-only model the
/// text before the first span marker is the prompt and the fill is its continuation.
/// </summary>
internal static class DemoFills
{
    /// <summary>
    /// Fixed prompts (a constant list, never picked per run), chosen once by looking: KJV phrases where the
    /// fixtures' models put words first (mixtral-tiny-8's next token after "Thus saith the" is "LORD", 14%). The
    /// embedded switch-tiny-8, a span-corruption model trained for minutes, ranks "," first at every span of every
    /// KJV sentence tried (about 6-8%), so the table shows each model's three most probable word tokens; the raw
    /// top-3 are in demo-report.json.
    /// </summary>
    public static readonly string[] Prompts =
    [
        "Thus saith the <extra_id_0> of hosts.",
        "And Moses spake unto the children of <extra_id_0>, saying,",
        "And it came to <extra_id_0>, when the king heard it.",
        "I will dwell in the house of the <extra_id_0> for ever.",
    ];

    /// <summary>Greedy fill length cap (tokens per span).</summary>
    private const int MaxFillTokens = 8;

    public sealed record Candidate(string Text, double Probability);
    /// <summary>A span's raw top-k tokens, its top-k word tokens (text with a letter or digit), and the greedy fill.</summary>
    public sealed record Span(string Marker, Candidate[] Top, Candidate[] TopWords, string Fill);
    public sealed record PromptFills(string Prompt, Span[] Spans);

    public static PromptFills[] Run(IRunnableModel model, int topK = 3) => [.. Prompts.Select(p => Run(model, p, topK))];

    /// <summary>A prompt's ids as the model takes it: with the tokenizer's specials for an encoder-decoder; for a
    /// decoder-only model the text before the first span marker, without (as <see cref="Generation.Run"/>).</summary>
    public static int[] PromptIds(IRunnableModel model, string prompt) => model.IsDecoderOnly
        ? model.Tokenizer.Encode(DecoderOnlyPrompt(prompt), addSpecialTokens: false)
        : model.Tokenizer.Encode(prompt, addSpecialTokens: true);

    private static string DecoderOnlyPrompt(string prompt)
    {
        int marker = prompt.IndexOf("<extra_id_", StringComparison.Ordinal);
        return (marker < 0 ? prompt : prompt[..marker]).TrimEnd();
    }

    public static PromptFills Run(IRunnableModel model, string prompt, int topK)
    {
        var tok = model.Tokenizer;
        var eos = tok.Special.Eos.ToHashSet();
        if (model.IsDecoderOnly)
        {
            var (top, words, fill) = Complete(model, PromptIds(model, prompt), [], eos, _ => false, topK);
            return new PromptFills(DecoderOnlyPrompt(prompt), [new Span("next", top, words, fill)]);
        }
        // Encoder-decoder (T5 span corruption): the decoder emits each sentinel, then that span's fill.
        var ids = PromptIds(model, prompt);
        var t5 = tok as T5Tokenizer;
        bool IsSentinel(int id) => t5 != null && t5.IsSentinel(id);
        var sentinels = ids.Where(IsSentinel).ToArray();
        var prefix = new List<int> { model is SwitchRunnable s ? s.Model.Config.DecoderStartTokenId : 0 };
        var spans = new List<Span>();
        foreach (int sentinel in sentinels.Length > 0 ? sentinels : [-1])
        {
            if (sentinel >= 0) prefix.Add(sentinel);
            var (top, words, fill) = Complete(model, ids, prefix, eos, IsSentinel, topK);
            spans.Add(new Span(sentinel >= 0 ? tok.Decode([sentinel], skipSpecialTokens: false).Trim() : "output", top, words, fill));
        }
        return new PromptFills(prompt, [.. spans]);
    }

    /// <summary>Top-k of the next token after <paramref name="prefix"/>, then the greedy fill (appended to the prefix)
    /// up to a span marker, eos, or <see cref="MaxFillTokens"/> tokens.</summary>
    private static (Candidate[] Top, Candidate[] Words, string Fill) Complete(IRunnableModel model, int[] input, List<int> prefix,
        HashSet<int> eos, Func<int, bool> stop, int topK)
    {
        var probs = Softmax(model.NextTokenLogits(input, [.. prefix]));
        var ranked = Enumerable.Range(0, probs.Length).OrderByDescending(i => probs[i]).ThenBy(i => i)
            .Select(i => new Candidate(model.Tokenizer.DecodeGenerated([i], skipSpecialTokens: false).Trim(), probs[i]));
        var top = ranked.Take(topK).ToArray();
        var words = ranked.Where(c => IsWord(c.Text)).Take(topK).ToArray();
        var fill = new List<int>();
        for (int step = 0; step < MaxFillTokens; step++)
        {
            var logits = step == 0 ? null : model.NextTokenLogits(input, [.. prefix]);
            int next = step == 0 ? ArgMax(probs) : ArgMax(logits!);
            if (eos.Contains(next) || stop(next)) break;
            prefix.Add(next);
            fill.Add(next);
        }
        return (top, words, model.Tokenizer.DecodeGenerated([.. fill]).Trim());
    }

    /// <summary>A token text that is (part of) a word: a letter or digit, not a special token such as &lt;extra_id_1&gt;.</summary>
    public static bool IsWord(string text) => !text.StartsWith('<') && text.Any(char.IsLetterOrDigit);

    private static int ArgMax(ReadOnlySpan<float> v) => Models.Switch.SwitchGenerator.ArgMax(v);

    private static int ArgMax(double[] v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    private static double[] Softmax(float[] logits)
    {
        double max = logits.Max();
        var p = logits.Select(l => Math.Exp(l - max)).ToArray();
        double sum = p.Sum();
        for (int i = 0; i < p.Length; i++) p[i] /= sum;
        return p;
    }

    public static JsonArray ToJson(PromptFills[] dense, PromptFills[] compressed) =>
        new([.. dense.Zip(compressed, (d, c) => (JsonNode)new JsonObject
        {
            ["prompt"] = d.Prompt,
            ["spans"] = new JsonArray([.. d.Spans.Zip(c.Spans, (sd, sc) => (JsonNode)new JsonObject
            {
                ["span"] = sd.Marker,
                ["dense"] = SpanJson(sd), ["compressed"] = SpanJson(sc),
            })]),
        })]);

    private static JsonObject SpanJson(Span s) => new()
    {
        ["fill"] = s.Fill,
        ["top"] = Candidates(s.Top), ["top_words"] = Candidates(s.TopWords),
    };

    private static JsonArray Candidates(Candidate[] c) =>
        new([.. c.Select(x => (JsonNode)new JsonObject { ["text"] = x.Text, ["probability"] = x.Probability })]);

    /// <summary>"LORD 14.2% · king 4.1% · land 3.0%"</summary>
    public static string Format(Candidate[] c) => string.Join(" · ", c.Select(x => $"{x.Text} {100 * x.Probability:F1}%"));
}
