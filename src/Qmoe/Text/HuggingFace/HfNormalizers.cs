using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>A <c>tokenizer.json</c> normalizer: rewrites the text of a piece before pre-tokenization.</summary>
internal interface IHfNormalizer
{
    string Normalize(string text);
}

/// <summary>The normalizers of <c>tokenizer.json</c> (Hugging Face tokenizers' semantics), built from JSON.</summary>
internal static class HfNormalizers
{
    public static IHfNormalizer? Parse(HfJson json, JsonElement? element, string path)
    {
        if (element is not { } e) return null;
        string type = json.Type(e, path);
        switch (type)
        {
            case "Sequence":
            {
                var items = json.Array(json.Required(e, path, "normalizers"), path + ".normalizers");
                var list = new List<IHfNormalizer>();
                int i = 0;
                foreach (var item in items.EnumerateArray())
                {
                    if (Parse(json, item.ValueKind == JsonValueKind.Null ? null : item, $"{path}.normalizers[{i++}]") is { } n) list.Add(n);
                }
                return new Sequence(list);
            }
            case "NFC": return new Unicode(UnicodeForm.Nfc);
            case "NFD": return new Unicode(UnicodeForm.Nfd);
            case "NFKC": return new Unicode(UnicodeForm.Nfkc);
            case "NFKD": return new Unicode(UnicodeForm.Nfkd);
            case "Lowercase": return new Lowercase();
            case "Strip":
                return new Strip(json.OptionalBool(e, path, "strip_left", false), json.OptionalBool(e, path, "strip_right", false));
            case "Prepend":
                return new Prepend(json.String(json.Required(e, path, "prepend"), path + ".prepend"));
            case "Replace":
                return new Replace(HfPattern.Parse(json, json.Required(e, path, "pattern"), path + ".pattern"),
                    json.String(json.Required(e, path, "content"), path + ".content"));
            case "StripAccents": return new StripAccents();
            case "NMT": return new Nmt();
            default: throw json.Unsupported(path, $"normalizer type {type}");
        }
    }

    private sealed class Sequence(List<IHfNormalizer> items) : IHfNormalizer
    {
        public string Normalize(string text)
        {
            foreach (var n in items) text = n.Normalize(text);
            return text;
        }
    }

    private sealed class Unicode(UnicodeForm form) : IHfNormalizer
    {
        public string Normalize(string text) => UnicodeNormalizer.Normalize(text, form);
    }

    /// <summary>Rust's <c>char::to_lowercase</c>: the simple mapping except U+0130 'İ' → "i̇" (its full mapping), and
    /// none for the capitals Unicode 17 added (U+A7CE, U+A7D2, U+A7D4, U+16EA0..U+16EB8), which .NET 10 lowercases but
    /// the reference's Unicode 16 tables do not (measured over all code points with tokenizers 0.23.2).</summary>
    private sealed class Lowercase : IHfNormalizer
    {
        public string Normalize(string text)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var r in text.EnumerateRunes())
            {
                if (r.Value == 0x130) sb.Append("i\u0307");
                else if (r.Value is 0xA7CE or 0xA7D2 or 0xA7D4 or >= 0x16EA0 and <= 0x16EB8) sb.Append(r.ToString());
                else sb.Append(Rune.ToLowerInvariant(r).ToString());
            }
            return sb.ToString();
        }
    }

    /// <summary>Removes leading and/or trailing White_Space characters.</summary>
    private sealed class Strip(bool left, bool right) : IHfNormalizer
    {
        public string Normalize(string text)
        {
            int start = 0, end = text.Length;
            if (left) while (start < end && char.IsWhiteSpace(text[start])) start++;
            if (right) while (end > start && char.IsWhiteSpace(text[end - 1])) end--;
            return start == 0 && end == text.Length ? text : text[start..end];
        }
    }

    private sealed class Prepend(string prefix) : IHfNormalizer
    {
        public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    private sealed class Replace(HfPattern pattern, string content) : IHfNormalizer
    {
        public string Normalize(string text) => pattern.Replace(text, content);
    }

    /// <summary>Drops combining marks (general category M, see <see cref="UnicodeNormalizer.IsCombiningMark"/>).</summary>
    private sealed class StripAccents : IHfNormalizer
    {
        public string Normalize(string text)
        {
            var sb = new StringBuilder(text.Length);
            foreach (var r in text.EnumerateRunes())
                if (!UnicodeNormalizer.IsCombiningMark(r.Value)) sb.Append(r.ToString());
            return sb.ToString();
        }
    }

    /// <summary>SentencePiece's nmt normalization: drops ASCII controls, maps odd spaces to ' '.</summary>
    private sealed class Nmt : IHfNormalizer
    {
        public string Normalize(string text)
        {
            var sb = new StringBuilder(text.Length);
            foreach (char c in text)
            {
                switch (c)
                {
                    case >= '\u0001' and <= '\u0008' or '\u000B' or >= '\u000E' and <= '\u001F' or '\u007F' or '\u008F' or '\u009F':
                        continue;
                    case '\t' or '\n' or '\u000C' or '\r' or '\u1680' or >= '\u200B' and <= '\u200F' or '\u2028' or '\u2029' or '\u2581' or '\uFEFF' or '\uFFFD':
                        sb.Append(' ');
                        break;
                    default:
                        sb.Append(c);
                        break;
                }
            }
            return sb.ToString();
        }
    }
}

/// <summary>
/// A <c>tokenizer.json</c> pattern: <c>{"String": s}</c> (a literal, matched leftmost without overlap) or
/// <c>{"Regex": r}</c> (see <see cref="OnigRegex"/>). An empty literal is refused (Hugging Face then produces
/// offsets in characters where it expects bytes).
/// </summary>
internal sealed class HfPattern
{
    private readonly string? _literal;
    private readonly OnigRegex? _regex;

    private HfPattern(string? literal, OnigRegex? regex) { _literal = literal; _regex = regex; }

    public static HfPattern Parse(HfJson json, JsonElement e, string path)
    {
        json.Object(e, path);
        if (HfJson.Optional(e, "String") is { } s)
        {
            string literal = json.String(s, path + ".String");
            if (literal.Length == 0) throw json.Error(path + ".String", "empty pattern is not supported");
            return new HfPattern(literal, null);
        }
        if (HfJson.Optional(e, "Regex") is { } r)
        {
            string p = json.String(r, path + ".Regex");
            return new HfPattern(null, OnigRegex.Create(p, m => json.Error(path + ".Regex", m)));
        }
        throw json.Error(path, "expected {\"String\": ...} or {\"Regex\": ...}");
    }

    /// <summary>A pattern matching exactly <paramref name="literal"/> (non-empty).</summary>
    public static HfPattern Literal(string literal) => new(literal, null);

    /// <summary>See <see cref="OnigRegex.FindMatches"/>.</summary>
    public void FindMatches(string text, List<(int Start, int End, bool IsMatch)> output)
    {
        if (_regex != null) { _regex.FindMatches(text, output); return; }
        output.Clear();
        if (text.Length == 0) { output.Add((0, 0, false)); return; }
        int prev = 0;
        for (int at = text.IndexOf(_literal!, StringComparison.Ordinal); at >= 0; at = text.IndexOf(_literal!, prev, StringComparison.Ordinal))
        {
            if (prev != at) output.Add((prev, at, false));
            output.Add((at, at + _literal!.Length, true));
            prev = at + _literal!.Length;
            if (prev >= text.Length) break;
        }
        if (prev != text.Length) output.Add((prev, text.Length, false));
    }

    public string Replace(string text, string content) =>
        _regex != null ? _regex.Replace(text, content) : text.Replace(_literal!, content, StringComparison.Ordinal);
}
