using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// A <c>tokenizer.json</c> regex (written for Oniguruma, which Hugging Face tokenizers uses) run with .NET's
/// <see cref="Regex"/>, matching per code point as Oniguruma does.
/// <para>Why the mapping: .NET matches UTF-16 units, so an astral letter (a surrogate pair) is not <c>\p{L}</c>
/// and counts as two characters in <c>\p{N}{1,3}</c> or <c>[^\r\n\p{L}\p{N}]?</c>. Before matching, each astral
/// code point is replaced by one BMP stand-in of the same Unicode general category, chosen outside every character
/// and range the pattern names; match positions are then mapped back. Patterns that name astral characters
/// themselves are refused. Everything else in the GPT-2/GPT-4/Qwen/DeepSeek patterns (<c>\s+(?!\S)</c>,
/// <c>(?i:'s|…)</c>, <c>\p{..}</c> classes) has the same meaning in both engines.</para>
/// Thread-safe.
/// </summary>
internal sealed class OnigRegex
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(10);
    private static readonly ConcurrentDictionary<string, Regex> Compiled = new(StringComparer.Ordinal);
    private const int MaxCachedPatterns = 64;

    private readonly Regex _regex;
    private readonly char[] _standIn; // by UnicodeCategory: the BMP character an astral code point of that category becomes

    public string Pattern { get; }

    private OnigRegex(string pattern, Regex regex, char[] standIn) { Pattern = pattern; _regex = regex; _standIn = standIn; }

    /// <summary>Compiles <paramref name="pattern"/>; <paramref name="fail"/> builds the error naming the field.</summary>
    public static OnigRegex Create(string pattern, Func<string, QmoeException> fail)
    {
        var named = NamedRanges(pattern, fail);
        var standIn = new char[32];
        for (int cat = 0; cat < 30; cat++)
        {
            if (!AstralCategories.Value[cat]) continue; // e.g. spaces, controls: no astral code point has these
            standIn[cat] = StandIns.Value[cat].FirstOrDefault(c => !named.Any(r => Mentions(r, c)), '\0');
            if (standIn[cat] == '\0') throw fail($"regex names too many characters to match astral code points (category {(UnicodeCategory)cat})");
        }

        if (!Compiled.TryGetValue(pattern, out var regex))
        {
            try { regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, MatchTimeout); }
            catch (ArgumentException e) { throw fail($"regex is not supported ({e.Message.ReplaceLineEndings(" ")})"); }
            if (Compiled.Count < MaxCachedPatterns) Compiled.TryAdd(pattern, regex);
        }
        return new OnigRegex(pattern, regex, standIn);
    }

    /// <summary>
    /// Hugging Face's <c>Pattern::find_matches</c>: pieces covering <paramref name="text"/> in order, each a match or
    /// the gap between matches; an empty match right at the end of the previous match is skipped (onig's find_iter).
    /// </summary>
    public void FindMatches(string text, List<(int Start, int End, bool IsMatch)> output)
    {
        output.Clear();
        if (text.Length == 0) { output.Add((0, 0, false)); return; }
        int[]? toOriginal = null;
        string subject = text;
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0) (subject, toOriginal) = MapAstral(text);

        int prev = 0, lastMatchEnd = -1;
        try
        {
            foreach (var m in _regex.EnumerateMatches(subject))
            {
                int start = m.Index, end = m.Index + m.Length;
                if (toOriginal != null) { start = toOriginal[start]; end = toOriginal[end]; }
                if (start == end && end == lastMatchEnd) continue;
                if (prev != start) output.Add((prev, start, false));
                output.Add((start, end, true));
                prev = lastMatchEnd = end;
            }
        }
        catch (RegexMatchTimeoutException) { throw new QmoeException(HfJson.Printable($"tokenizer.json regex {Pattern} timed out on a {text.Length}-character input")); }
        if (prev != text.Length) output.Add((prev, text.Length, false));
    }

    /// <summary>Replaces every match (as <see cref="FindMatches"/> finds them) by <paramref name="content"/>.</summary>
    public string Replace(string text, string content)
    {
        var pieces = new List<(int, int, bool)>();
        FindMatches(text, pieces);
        var sb = new System.Text.StringBuilder(text.Length);
        foreach (var (s, e, isMatch) in pieces) { if (isMatch) sb.Append(content); else sb.Append(text, s, e - s); }
        return sb.ToString();
    }

    /// <summary>One char per code point (astral ones become their category's stand-in) and, per index of that
    /// string (plus its end), the index in <paramref name="text"/>.</summary>
    private (string Subject, int[] ToOriginal) MapAstral(string text)
    {
        var chars = new char[text.Length];
        var map = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            map[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32(text[i], text[i + 1]);
                chars[n++] = _standIn[(int)CharUnicodeInfo.GetUnicodeCategory(cp)];
                i++;
            }
            else chars[n++] = text[i];
        }
        map[n] = text.Length;
        return (new string(chars, 0, n), map);
    }

    private static bool Mentions((int Lo, int Hi) r, char c) =>
        In(r, c) || In(r, char.ToLowerInvariant(c)) || In(r, char.ToUpperInvariant(c));

    private static bool In((int Lo, int Hi) r, int c) => c >= r.Lo && c <= r.Hi;

    /// <summary>The general categories that occur among astral code points.</summary>
    private static readonly Lazy<bool[]> AstralCategories = new(() =>
    {
        var present = new bool[32];
        for (int cp = 0x10000; cp <= 0x10FFFF; cp++) present[(int)CharUnicodeInfo.GetUnicodeCategory(cp)] = true;
        return present;
    });

    /// <summary>Candidate stand-ins per general category: BMP characters above Latin-1, from U+A000 up first
    /// (rarely named in patterns), then the rest.</summary>
    private static readonly Lazy<List<char>[]> StandIns = new(() =>
    {
        var lists = Enumerable.Range(0, 30).Select(_ => new List<char>()).ToArray();
        foreach (int c in Enumerable.Range(0xA000, 0x10000 - 0xA000).Concat(Enumerable.Range(0x100, 0xA000 - 0x100)))
        {
            if (c is >= 0xD800 and < 0xE000) continue; // surrogates are never stand-ins
            var list = lists[(int)CharUnicodeInfo.GetUnicodeCategory((char)c)];
            if (list.Count < 16) list.Add((char)c);
        }
        // Astral private-use and unassigned code points have BMP counterparts; surrogates cannot occur as code points.
        return lists;
    });

    /// <summary>The non-ASCII characters and ranges the pattern names (literally or as \uXXXX / \xXX escapes).</summary>
    private static List<(int, int)> NamedRanges(string p, Func<string, QmoeException> fail)
    {
        var named = new List<(int, int)>();
        bool inClass = false;
        int lastChar = -1; // the previous class member when it was a single character
        for (int i = 0; i < p.Length; i++)
        {
            int cp;
            char c = p[i];
            if (char.IsSurrogate(c)) throw fail("regex names characters outside the Basic Multilingual Plane, which is not supported");
            if (c == '\\' && i + 1 < p.Length)
            {
                char e = p[++i];
                if (e == 'u' && i + 4 < p.Length && int.TryParse(p.AsSpan(i + 1, 4), NumberStyles.HexNumber, null, out cp)) i += 4;
                else if (e == 'x' && i + 1 < p.Length && p[i + 1] == '{')
                {
                    int close = p.IndexOf('}', i);
                    if (close < 0 || !int.TryParse(p.AsSpan(i + 2, close - i - 2), NumberStyles.HexNumber, null, out cp)) cp = -1;
                    else i = close;
                    if (cp > 0xFFFF) throw fail("regex names characters outside the Basic Multilingual Plane, which is not supported");
                }
                else if (e == 'x' && i + 2 < p.Length && int.TryParse(p.AsSpan(i + 1, 2), NumberStyles.HexNumber, null, out cp)) i += 2;
                else if (e is 'p' or 'P' && i + 1 < p.Length && p[i + 1] == '{') { int close = p.IndexOf('}', i); i = close < 0 ? p.Length : close; cp = -1; }
                else cp = char.IsLetterOrDigit(e) ? -1 : e; // \s, \d ... are classes; \. \[ ... are literals
            }
            else if (c == '[' && !inClass) { inClass = true; lastChar = -1; continue; }
            else if (c == ']' && inClass) { inClass = false; lastChar = -1; continue; }
            else if (c == '-' && inClass && lastChar >= 0 && i + 1 < p.Length && p[i + 1] != ']')
            {
                // A range: read its upper end as the next member.
                int hiStart = i + 1;
                int hi = p[hiStart];
                if (hi == '\\' && hiStart + 5 < p.Length + 1 && p[hiStart + 1] == 'u' && hiStart + 5 < p.Length &&
                    int.TryParse(p.AsSpan(hiStart + 2, 4), NumberStyles.HexNumber, null, out int h)) { hi = h; i = hiStart + 5; }
                else if (char.IsSurrogate((char)hi)) throw fail("regex names characters outside the Basic Multilingual Plane, which is not supported");
                else i = hiStart;
                named.Add((lastChar, Math.Max(lastChar, hi)));
                lastChar = -1;
                continue;
            }
            else cp = c;
            if (cp >= 0x80) named.Add((cp, cp));
            lastChar = inClass ? cp : -1;
        }
        return named;
    }
}
