namespace Qmoe.Text.Templates;

/// <summary>
/// Splits Jinja source into segments and applies whitespace control as Hugging Face configures jinja2
/// (<c>trim_blocks=True, lstrip_blocks=True</c>, a single trailing newline dropped):
/// <list type="bullet">
/// <item><c>{%-</c>, <c>{{-</c>, <c>{#-</c> strip all whitespace before the tag; <c>-%}</c>, <c>-}}</c>, <c>-#}</c> all after it;</item>
/// <item>trim_blocks: the first newline after a statement or comment tag is removed (not after <c>+%}</c>);</item>
/// <item>lstrip_blocks: spaces and tabs between a line's start and a statement or comment tag are removed (not before <c>{%+</c>).</item>
/// </list>
/// </summary>
public static class TemplateLexer
{
    private sealed record RawTag(SegmentKind Kind, int Start, int End, string Content, char LeftMark, char RightMark);

    public static List<TemplateSegment> Split(string source)
    {
        if (source.EndsWith('\n')) source = source[..^(source.EndsWith("\r\n") ? 2 : 1)];
        var tags = FindTags(source);
        var result = new List<TemplateSegment>();
        int pos = 0;
        RawTag? prev = null;
        for (int i = 0; i <= tags.Count; i++)
        {
            var next = i < tags.Count ? tags[i] : null;
            int end = next?.Start ?? source.Length;
            string text = source[pos..end];
            bool lineStarting = pos == 0 || source[pos - 1] == '\n';
            if (prev != null)
            {
                if (prev.RightMark == '-')
                {
                    string trimmed = text.TrimStart();
                    if (trimmed.Length < text.Length && text[text.Length - trimmed.Length - 1] == '\n') lineStarting = true;
                    text = trimmed;
                }
                else if (prev.Kind != SegmentKind.Output && prev.RightMark != '+' && text.StartsWith('\n'))
                {
                    text = text[1..];
                    lineStarting = true;
                }
                else if (prev.Kind != SegmentKind.Output && prev.RightMark != '+' && text.StartsWith("\r\n"))
                {
                    text = text[2..];
                    lineStarting = true;
                }
            }
            if (next != null)
            {
                if (next.LeftMark == '-') text = text.TrimEnd();
                else if (next.Kind != SegmentKind.Output && next.LeftMark != '+')
                {
                    int lineStart = text.LastIndexOf('\n') + 1;
                    if ((lineStart > 0 || lineStarting) && lineStart < text.Length && text.AsSpan(lineStart).Trim(" \t\r\f\v").IsEmpty)
                        text = text[..lineStart];
                }
            }
            if (text.Length > 0) result.Add(new TemplateSegment(SegmentKind.Text, text, pos));
            if (next != null && next.Kind != SegmentKind.Comment) result.Add(new TemplateSegment(next.Kind, next.Content, next.Start));
            if (next != null) { pos = next.End; prev = next; }
        }
        return result;
    }

    private static List<RawTag> FindTags(string s)
    {
        var tags = new List<RawTag>();
        int i = 0;
        while (true)
        {
            int open = s.IndexOf('{', i);
            if (open < 0 || open + 1 >= s.Length) break;
            char c = s[open + 1];
            var kind = c switch { '{' => SegmentKind.Output, '%' => SegmentKind.Statement, '#' => SegmentKind.Comment, _ => SegmentKind.Text };
            if (kind == SegmentKind.Text) { i = open + 1; continue; }
            int p = open + 2;
            char left = p < s.Length && (s[p] == '-' || s[p] == '+') ? s[p++] : ' ';
            string close = kind switch { SegmentKind.Output => "}}", SegmentKind.Statement => "%}", _ => "#}" };
            int closeAt = kind == SegmentKind.Comment ? s.IndexOf(close, p, StringComparison.Ordinal) : FindClose(s, p, close);
            if (closeAt < 0) throw new QmoeException($"chat template: unclosed '{s.Substring(open, 2)}' at offset {open}");
            char right = closeAt > p && (s[closeAt - 1] == '-' || s[closeAt - 1] == '+') ? s[closeAt - 1] : ' ';
            int contentEnd = right != ' ' ? closeAt - 1 : closeAt;
            tags.Add(new RawTag(kind, open, closeAt + 2, s[p..Math.Max(p, contentEnd)], left, right));
            i = closeAt + 2;
        }
        return tags;
    }

    /// <summary>Index of <paramref name="close"/> after <paramref name="from"/>, skipping string literals.</summary>
    private static int FindClose(string s, int from, string close)
    {
        for (int i = from; i < s.Length - 1; i++)
        {
            char c = s[i];
            if (c == '\'' || c == '"')
            {
                for (i++; i < s.Length && s[i] != c; i++) if (s[i] == '\\') i++;
                continue;
            }
            if (c == close[0] && s[i + 1] == close[1]) return i;
        }
        return -1;
    }
}
