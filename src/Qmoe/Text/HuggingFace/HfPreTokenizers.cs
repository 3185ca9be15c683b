using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Qmoe.Text.HuggingFace;

/// <summary>A <c>tokenizer.json</c> pre-tokenizer: cuts (and may rewrite) one piece into the pieces the model sees.</summary>
internal interface IHfPreTokenizer
{
    /// <summary>Appends the non-empty pieces <paramref name="piece"/> becomes to <paramref name="output"/>.</summary>
    void Split(HfPiece piece, List<HfPiece> output);
}

/// <summary>The pre-tokenizers of <c>tokenizer.json</c> (Hugging Face tokenizers' semantics), built from JSON;
/// a Sequence is flattened into the list it returns.</summary>
internal static class HfPreTokenizers
{
    /// <summary>GPT-2's word regex, which ByteLevel uses when <c>use_regex</c> is true.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static void Parse(HfJson json, JsonElement? element, string path, List<IHfPreTokenizer> output)
    {
        if (element is not { } e) return;
        string type = json.Type(e, path);
        switch (type)
        {
            case "Sequence":
            {
                var items = json.Array(json.Required(e, path, "pretokenizers"), path + ".pretokenizers");
                int i = 0;
                foreach (var item in items.EnumerateArray())
                    Parse(json, item.ValueKind == JsonValueKind.Null ? null : item, $"{path}.pretokenizers[{i++}]", output);
                return;
            }
            case "ByteLevel":
                // trim_offsets only moves offsets, which qmoe does not report.
                output.Add(new ByteLevel(json.OptionalBool(e, path, "add_prefix_space", true), json.OptionalBool(e, path, "use_regex", true),
                    m => json.Error(path, m)));
                return;
            case "Split":
            {
                var pattern = HfPattern.Parse(json, json.Required(e, path, "pattern"), path + ".pattern");
                var behavior = PieceSplitter.ParseBehavior(json.String(json.Required(e, path, "behavior"), path + ".behavior"),
                    m => json.Error(path + ".behavior", m));
                output.Add(new Split(pattern, behavior, json.Bool(json.Required(e, path, "invert"), path + ".invert")));
                return;
            }
            case "Metaspace":
            {
                string replacement = json.String(json.Required(e, path, "replacement"), path + ".replacement");
                if (replacement.EnumerateRunes().Count() != 1) throw json.Error(path + ".replacement", "must be one character");
                string schemeText = json.OptionalString(e, path, "prepend_scheme") ?? "always";
                var scheme = schemeText switch
                {
                    "always" => PrependScheme.Always,
                    "first" => PrependScheme.First,
                    "never" => PrependScheme.Never,
                    _ => throw json.Unsupported(path + ".prepend_scheme", $"prepend_scheme {schemeText}"),
                };
                if (HfJson.Optional(e, "add_prefix_space") is { } aps && !json.Bool(aps, path + ".add_prefix_space"))
                {
                    if (scheme != PrependScheme.Never && HfJson.Optional(e, "prepend_scheme") != null)
                        throw json.Error(path + ".add_prefix_space", "add_prefix_space does not match declared prepend_scheme");
                    scheme = PrependScheme.Never;
                }
                output.Add(new Metaspace(replacement, scheme, json.OptionalBool(e, path, "split", true)));
                return;
            }
            case "Digits":
                output.Add(new Digits(json.OptionalBool(e, path, "individual_digits", false)));
                return;
            case "Whitespace":
                output.Add(new Whitespace());
                return;
            case "WhitespaceSplit":
                output.Add(new CharSplit(r => Rune.IsWhiteSpace(r), SplitBehavior.Removed));
                return;
            case "Punctuation":
            {
                string b = json.OptionalString(e, path, "behavior") ?? "Isolated";
                output.Add(new CharSplit(IsPunctuation, PieceSplitter.ParseBehavior(b, m => json.Error(path + ".behavior", m))));
                return;
            }
            case "BertPreTokenizer":
                output.Add(new CharSplit(r => Rune.IsWhiteSpace(r), SplitBehavior.Removed));
                output.Add(new CharSplit(IsPunctuation, SplitBehavior.Isolated));
                return;
            case "CharDelimiterSplit":
            {
                string d = json.String(json.Required(e, path, "delimiter"), path + ".delimiter");
                if (d.EnumerateRunes().Count() != 1) throw json.Error(path + ".delimiter", "must be one character");
                var rune = d.EnumerateRunes().First();
                output.Add(new CharSplit(r => r == rune, SplitBehavior.Removed));
                return;
            }
            default:
                throw json.Unsupported(path, $"pre_tokenizer type {type}");
        }
    }

    /// <summary>Rust's <c>is_ascii_punctuation() || is_punctuation()</c> (general category P*).</summary>
    private static bool IsPunctuation(Rune r) =>
        r.IsAscii && char.IsAsciiLetterOrDigit((char)r.Value) == false && r.Value is > 0x20 and < 0x7F ||
        Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;

    /// <summary>Pieces of per-code-point predicate matches (Hugging Face's <c>Fn(char) -> bool</c> pattern).</summary>
    private static void CharMatches(string text, Func<Rune, bool> isMatch, List<(int, int, bool)> output)
    {
        output.Clear();
        if (text.Length == 0) { output.Add((0, 0, false)); return; }
        int last = 0;
        for (int i = 0; i < text.Length;)
        {
            Rune.DecodeFromUtf16(text.AsSpan(i), out var r, out int n);
            if (isMatch(r))
            {
                if (last < i) output.Add((last, i, false));
                output.Add((i, i + n, true));
                last = i + n;
            }
            i += n;
        }
        if (last < text.Length) output.Add((last, text.Length, false));
    }

    private sealed class CharSplit(Func<Rune, bool> isMatch, SplitBehavior behavior) : IHfPreTokenizer
    {
        [ThreadStatic] private static List<(int, int, bool)>? t_matches;

        public void Split(HfPiece piece, List<HfPiece> output)
        {
            var matches = t_matches ??= new();
            CharMatches(piece.Text, isMatch, matches);
            PieceSplitter.Split(piece, matches, behavior, false, output);
        }
    }

    /// <summary>Splits at each numeric character (Rust's <c>char::is_numeric</c>: general category N*), one piece per
    /// digit or per run of digits.</summary>
    private sealed class Digits(bool individual) : IHfPreTokenizer
    {
        private readonly CharSplit _split = new(IsNumeric, individual ? SplitBehavior.Isolated : SplitBehavior.Contiguous);

        private static bool IsNumeric(Rune r) =>
            Rune.GetUnicodeCategory(r) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

        public void Split(HfPiece piece, List<HfPiece> output) => _split.Split(piece, output);
    }

    private sealed class Split(HfPattern pattern, SplitBehavior behavior, bool invert) : IHfPreTokenizer
    {
        [ThreadStatic] private static List<(int, int, bool)>? t_matches;

        void IHfPreTokenizer.Split(HfPiece piece, List<HfPiece> output)
        {
            var matches = t_matches ??= new();
            pattern.FindMatches(piece.Text, matches);
            PieceSplitter.Split(piece, matches, behavior, invert, output);
        }
    }

    /// <summary>
    /// GPT-2 byte-level: optionally a leading ' ', optionally the GPT-2 regex split, then each piece's UTF-8 bytes
    /// as <see cref="ByteLevelAlphabet"/> characters.
    /// </summary>
    private sealed class ByteLevel(bool addPrefixSpace, bool useRegex, Func<string, QmoeException> fail) : IHfPreTokenizer
    {
        [ThreadStatic] private static List<(int, int, bool)>? t_matches;
        [ThreadStatic] private static List<HfPiece>? t_pieces;
        private readonly OnigRegex? _regex = useRegex ? OnigRegex.Create(Gpt2Pattern, fail) : null;

        public void Split(HfPiece piece, List<HfPiece> output)
        {
            if (addPrefixSpace && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
            if (_regex == null)
            {
                output.Add(piece with { Text = ByteLevelAlphabet.Map(piece.Text) });
                return;
            }
            var matches = t_matches ??= new();
            var pieces = t_pieces ??= new();
            pieces.Clear();
            _regex.FindMatches(piece.Text, matches);
            PieceSplitter.Split(piece, matches, SplitBehavior.Isolated, false, pieces);
            foreach (var p in pieces) output.Add(p with { Text = ByteLevelAlphabet.Map(p.Text) });
        }
    }

    internal enum PrependScheme { Always, First, Never }

    /// <summary>
    /// SentencePiece-style spaces: ' ' → the replacement ('▁'); a replacement prepended (always, or only to the piece
    /// at the start of the input); optionally split before each replacement.
    /// </summary>
    private sealed class Metaspace(string replacement, PrependScheme scheme, bool split) : IHfPreTokenizer
    {
        [ThreadStatic] private static List<(int, int, bool)>? t_matches;
        private readonly HfPattern _replacement = HfPattern.Literal(replacement);

        public void Split(HfPiece piece, List<HfPiece> output)
        {
            string text = piece.Text.Replace(" ", replacement, StringComparison.Ordinal);
            bool prepend = scheme == PrependScheme.Always || scheme == PrependScheme.First && piece.AtOrigin;
            if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
            piece = piece with { Text = text };
            if (!split) { if (text.Length > 0) output.Add(piece); return; }
            var matches = t_matches ??= new();
            _replacement.FindMatches(text, matches);
            PieceSplitter.Split(piece, matches, SplitBehavior.MergedWithNext, false, output);
        }
    }

    /// <summary>Rust regex <c>\w+|[^\w\s]+</c> pieces (whitespace dropped), <c>\w</c> as <see cref="RustWordChar"/>.</summary>
    private sealed class Whitespace : IHfPreTokenizer
    {
        [ThreadStatic] private static List<(int, int, bool)>? t_matches;

        private static int Class(Rune r)
        {
            if (Rune.IsWhiteSpace(r)) return 0;
            return RustWordChar.IsWord(r) ? 1 : 2;
        }

        public void Split(HfPiece piece, List<HfPiece> output)
        {
            // Runs of word characters and runs of other non-space characters are the (kept) matches.
            var matches = t_matches ??= new();
            matches.Clear();
            string text = piece.Text;
            int runStart = 0, runClass = -1;
            for (int i = 0; i <= text.Length;)
            {
                int cls = -1, n = 1;
                if (i < text.Length) { Rune.DecodeFromUtf16(text.AsSpan(i), out var r, out n); cls = Class(r); }
                if (cls != runClass)
                {
                    if (runClass >= 0 && i > runStart) matches.Add((runStart, i, runClass != 0));
                    runStart = i;
                    runClass = cls;
                }
                if (i == text.Length) break;
                i += n;
            }
            if (matches.Count == 0) matches.Add((0, 0, false));
            PieceSplitter.Split(piece, matches, SplitBehavior.Removed, true, output);
        }
    }
}
