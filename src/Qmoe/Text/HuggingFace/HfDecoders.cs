using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Qmoe.Text.HuggingFace;

/// <summary>A <c>tokenizer.json</c> decoder: rewrites the list of token strings (Hugging Face's <c>decode_chain</c>);
/// the final text is the list joined.</summary>
internal interface IHfDecoder
{
    List<string> DecodeChain(List<string> tokens);
}

/// <summary>The decoders of <c>tokenizer.json</c> (Hugging Face tokenizers' semantics), built from JSON.</summary>
internal static class HfDecoders
{
    private const string ReplacementCharacter = "\uFFFD";

    public static IHfDecoder? Parse(HfJson json, JsonElement? element, string path)
    {
        if (element is not { } e) return null;
        string type = json.Type(e, path);
        switch (type)
        {
            case "Sequence":
            {
                var items = json.Array(json.Required(e, path, "decoders"), path + ".decoders");
                var list = new List<IHfDecoder>();
                int i = 0;
                foreach (var item in items.EnumerateArray())
                {
                    string p = $"{path}.decoders[{i++}]";
                    list.Add(Parse(json, item, p) ?? throw json.Error(p, "null decoder"));
                }
                return new Sequence(list);
            }
            case "ByteLevel": return new ByteLevel();
            case "ByteFallback": return new ByteFallback();
            case "Fuse": return new Fuse();
            case "Strip":
            {
                string content = json.String(json.Required(e, path, "content"), path + ".content");
                if (content.EnumerateRunes().Count() != 1) throw json.Error(path + ".content", "must be one character");
                return new Strip(content.EnumerateRunes().First(), json.Int(json.Required(e, path, "start"), path + ".start"),
                    json.Int(json.Required(e, path, "stop"), path + ".stop"));
            }
            case "Replace":
                return new Replace(HfPattern.Parse(json, json.Required(e, path, "pattern"), path + ".pattern"),
                    json.String(json.Required(e, path, "content"), path + ".content"));
            case "Metaspace":
            {
                string replacement = json.String(json.Required(e, path, "replacement"), path + ".replacement");
                if (replacement.EnumerateRunes().Count() != 1) throw json.Error(path + ".replacement", "must be one character");
                string scheme = json.OptionalString(e, path, "prepend_scheme") ?? "always";
                if (scheme is not ("always" or "first" or "never")) throw json.Unsupported(path + ".prepend_scheme", $"prepend_scheme {scheme}");
                bool prepend = scheme != "never";
                if (HfJson.Optional(e, "add_prefix_space") is { } aps && !json.Bool(aps, path + ".add_prefix_space")) prepend = false;
                return new Metaspace(replacement, prepend);
            }
            case "WordPiece":
                return new WordPiece(json.OptionalString(e, path, "prefix") ?? "##", json.OptionalBool(e, path, "cleanup", true));
            case "BPEDecoder":
                return new BpeSuffix(json.OptionalString(e, path, "suffix") ?? "</w>");
            default:
                throw json.Unsupported(path, $"decoder type {type}");
        }
    }

    private sealed class Sequence(List<IHfDecoder> items) : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            foreach (var d in items) tokens = d.DecodeChain(tokens);
            return tokens;
        }
    }

    /// <summary>Byte-level characters back to bytes, all tokens at once, decoded as UTF-8 with U+FFFD for bad bytes.</summary>
    private sealed class ByteLevel : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            var bytes = new List<byte>();
            foreach (var t in tokens) ByteLevelAlphabet.AppendBytes(t, bytes);
            return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
        }
    }

    /// <summary>Runs of <c>&lt;0xXX&gt;</c> tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
    private sealed class ByteFallback : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            var pending = new List<byte>();
            foreach (var t in tokens)
            {
                if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                    byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier, null, out byte b))
                {
                    pending.Add(b);
                    continue;
                }
                Flush();
                output.Add(t);
            }
            Flush();
            return output;

            void Flush()
            {
                if (pending.Count == 0) return;
                var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pending);
                if (Utf8.IsValid(span)) output.Add(Encoding.UTF8.GetString(span));
                else for (int i = 0; i < pending.Count; i++) output.Add(ReplacementCharacter);
                pending.Clear();
            }
        }
    }

    private sealed class Fuse : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
    }

    /// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> characters of each token.</summary>
    private sealed class Strip(Rune content, int start, int stop) : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            foreach (var t in tokens)
            {
                var runes = t.EnumerateRunes().ToList();
                int startCut = 0;
                for (int i = 0; i < Math.Min(start, runes.Count) && runes[i] == content; i++) startCut = i + 1;
                int stopCut = runes.Count;
                for (int i = 0; i < Math.Min(stop, runes.Count) && runes[runes.Count - i - 1] == content; i++) stopCut = runes.Count - i - 1;
                var sb = new StringBuilder();
                for (int i = startCut; i < stopCut; i++) sb.Append(runes[i].ToString());
                output.Add(sb.ToString());
            }
            return output;
        }
    }

    private sealed class Replace(HfPattern pattern, string content) : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(t => pattern.Replace(t, content));
    }

    /// <summary>The replacement becomes ' ', except in the first token when a prefix was prepended (then dropped).</summary>
    private sealed class Metaspace(string replacement, bool prepend) : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
                output.Add(tokens[i].Replace(replacement, i == 0 && prepend ? "" : " ", StringComparison.Ordinal));
            return output;
        }
    }

    private sealed class WordPiece(string prefix, bool cleanup) : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
            {
                string t = tokens[i];
                if (i != 0) t = t.StartsWith(prefix, StringComparison.Ordinal) ? t[prefix.Length..] : " " + t;
                if (cleanup)
                    t = t.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
                        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" do not", " don't").Replace(" 's", "'s")
                        .Replace(" 've", "'ve").Replace(" 're", "'re");
                output.Add(t);
            }
            return output;
        }
    }

    private sealed class BpeSuffix(string suffix) : IHfDecoder
    {
        public List<string> DecodeChain(List<string> tokens)
        {
            var output = new List<string>(tokens.Count);
            for (int i = 0; i < tokens.Count; i++)
                output.Add(suffix.Length == 0 ? tokens[i] : tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal));
            return output;
        }
    }
}
