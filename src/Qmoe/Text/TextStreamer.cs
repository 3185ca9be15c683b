namespace Qmoe.Text;

/// <summary>
/// Turns generated ids into text deltas as they arrive: the ids so far are decoded as a whole and the new part is
/// emitted, except a trailing replacement character (an incomplete UTF-8 sequence) and any tail that could still
/// become a stop string, which are held back. When a stop string appears the text ends just before it.
/// The concatenated deltas equal the decoded text of all ids (cut at the first stop string; ids the tokenizer has no
/// token for are dropped, <see cref="GeneratedIds"/>).
/// </summary>
public sealed class TextStreamer(ITokenizer tokenizer, IReadOnlyList<string>? stops = null)
{
    private readonly List<int> _ids = new();
    private readonly IReadOnlyList<string> _stops = stops?.Where(s => s.Length > 0).ToArray() ?? Array.Empty<string>();
    private string _emitted = "";

    /// <summary>True once a stop string was found: the caller should end generation.</summary>
    public bool Stopped { get; private set; }
    public int TokenCount => _ids.Count;
    /// <summary>All text emitted so far.</summary>
    public string Text => _emitted;

    /// <summary>Adds one id; returns the text that became final (possibly empty).</summary>
    public string Push(int id)
    {
        if (Stopped) return "";
        _ids.Add(id);
        return Emit(tokenizer.DecodeGenerated(_ids.ToArray()), final: false);
    }

    /// <summary>Emits what was held back (the generation ended).</summary>
    public string Flush() => Stopped ? "" : Emit(tokenizer.DecodeGenerated(_ids.ToArray()), final: true);

    private string Emit(string text, bool final)
    {
        int from = Math.Max(0, _emitted.Length - _stops.Select(s => s.Length).DefaultIfEmpty(0).Max());
        int stopAt = -1;
        foreach (var s in _stops)
        {
            int i = text.IndexOf(s, from, StringComparison.Ordinal);
            if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
        }
        int safe = text.Length;
        if (stopAt >= 0) { Stopped = true; safe = stopAt; }
        else if (!final)
        {
            while (safe > 0 && text[safe - 1] == '\uFFFD') safe--;
            int hold = 0;
            foreach (var s in _stops)
                for (int k = Math.Min(s.Length - 1, safe); k > hold; k--)
                    if (text.AsSpan(safe - k, k).SequenceEqual(s.AsSpan(0, k))) { hold = k; break; }
            safe -= hold;
        }
        // Decoding a longer prefix never rewrites what was already emitted (checked: the prefix must match).
        if (safe <= _emitted.Length || !text.StartsWith(_emitted, StringComparison.Ordinal)) return "";
        string delta = text[_emitted.Length..safe];
        _emitted = text[..safe];
        return delta;
    }
}
