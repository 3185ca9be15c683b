namespace Qmoe.Text.HuggingFace;

/// <summary>
/// One piece of the text being encoded (Hugging Face's <c>Split</c>): its current (normalized, pre-tokenized)
/// text; the added token it already is (<see cref="TokenId"/> ≥ 0) or -1; and whether it starts at offset 0 of the
/// original input (what Metaspace's <c>prepend_scheme: first</c> tests).
/// </summary>
internal readonly record struct HfPiece(string Text, int TokenId, bool AtOrigin)
{
    public bool IsToken => TokenId >= 0;
}

/// <summary>How a pre-tokenizer treats the delimiters its pattern matches (Hugging Face's SplitDelimiterBehavior).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>Hugging Face's <c>NormalizedString::split</c>: cuts a piece at pattern matches by a behavior.</summary>
internal static class PieceSplitter
{
    [ThreadStatic] private static List<(int Start, int End, bool Remove)>? t_parts;

    public static SplitBehavior ParseBehavior(string s, Func<string, QmoeException> fail) => s switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw fail($"behavior {s} is not supported"),
    };

    /// <summary>
    /// Appends to <paramref name="output"/> the non-empty parts of <paramref name="piece"/> cut at
    /// <paramref name="matches"/> (ordered, covering the text; IsMatch marks pattern matches) as
    /// <paramref name="behavior"/> says. Only a part starting at offset 0 keeps <see cref="HfPiece.AtOrigin"/>.
    /// </summary>
    public static void Split(HfPiece piece, List<(int Start, int End, bool IsMatch)> matches, SplitBehavior behavior,
        bool invert, List<HfPiece> output)
    {
        var parts = t_parts ??= new();
        parts.Clear();
        switch (behavior)
        {
            case SplitBehavior.Isolated:
                foreach (var m in matches) parts.Add((m.Start, m.End, false));
                break;
            case SplitBehavior.Removed:
                foreach (var m in matches) parts.Add((m.Start, m.End, m.IsMatch != invert));
                break;
            case SplitBehavior.Contiguous:
            {
                bool previous = false;
                foreach (var m in matches)
                {
                    bool isMatch = m.IsMatch != invert;
                    if (isMatch == previous && parts.Count > 0) parts[^1] = (parts[^1].Start, m.End, false);
                    else parts.Add((m.Start, m.End, false));
                    previous = isMatch;
                }
                break;
            }
            case SplitBehavior.MergedWithPrevious:
            {
                bool previous = false;
                foreach (var m in matches)
                {
                    bool isMatch = m.IsMatch != invert;
                    if (isMatch && !previous && parts.Count > 0) parts[^1] = (parts[^1].Start, m.End, false);
                    else parts.Add((m.Start, m.End, false));
                    previous = isMatch;
                }
                break;
            }
            case SplitBehavior.MergedWithNext:
            {
                bool previous = false;
                for (int i = matches.Count - 1; i >= 0; i--)
                {
                    var m = matches[i];
                    bool isMatch = m.IsMatch != invert;
                    if (isMatch && !previous && parts.Count > 0) parts[^1] = (m.Start, parts[^1].End, false);
                    else parts.Add((m.Start, m.End, false));
                    previous = isMatch;
                }
                parts.Reverse();
                break;
            }
        }
        string text = piece.Text;
        foreach (var (start, end, remove) in parts)
        {
            if (remove || end <= start) continue;
            output.Add(new HfPiece(start == 0 && end == text.Length ? text : text[start..end], -1, piece.AtOrigin && start == 0));
        }
    }
}
