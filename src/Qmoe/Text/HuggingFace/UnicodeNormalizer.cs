using System.Reflection;
using System.Text;

namespace Qmoe.Text.HuggingFace;

/// <summary>The four Unicode normalization forms.</summary>
internal enum UnicodeForm { Nfc, Nfd, Nfkc, Nfkd }

/// <summary>
/// Unicode normalization (NFC, NFD, NFKC, NFKD) over code points: full decomposition, canonical reordering, and
/// for the C forms canonical composition. Written here because the project runs with InvariantGlobalization, where
/// .NET's <see cref="string.Normalize(System.Text.NormalizationForm)"/> returns its input unchanged. The data
/// (UnicodeNormalization.txt, embedded) comes from Python's unicodedata via scripts/gen_unicode_normalization.py;
/// Hangul syllables are handled algorithmically. Thread-safe.
/// </summary>
internal static class UnicodeNormalizer
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private sealed class Tables
    {
        public readonly Dictionary<int, byte> Ccc = new();
        public readonly Dictionary<int, int[]> Canonical = new();
        public readonly Dictionary<int, int[]> Compatibility = new();
        public readonly Dictionary<long, int> Compose = new();
        public readonly List<(int First, int Last)> Marks = new();
        /// <summary>Per BMP character, bit (1 &lt;&lt; form) set when the character may change in that form or change
        /// its neighbours (quick check "no/maybe"); text with none of them is already normalized.</summary>
        public readonly byte[] Unsafe = new byte[65536];
        public readonly HashSet<int> Seconds = new();   // code points that compose with a preceding starter
        public readonly HashSet<int> Composites = new(); // primary composites
    }

    private static readonly Lazy<Tables> Data = new(Load);

    private static Tables Load()
    {
        var t = new Tables();
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Qmoe.UnicodeNormalization.txt")
            ?? throw new InvalidOperationException("embedded UnicodeNormalization.txt missing");
        using var reader = new StreamReader(stream, Encoding.ASCII);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var f = line.Split(';');
            if (f[0] == "M") { t.Marks.Add((Convert.ToInt32(f[1], 16), Convert.ToInt32(f[2], 16))); continue; }
            int cp = Convert.ToInt32(f[0], 16);
            byte ccc = byte.Parse(f[1]);
            if (ccc != 0) t.Ccc[cp] = ccc;
            if (f[2].Length > 0) t.Canonical[cp] = Hex(f[2]);
            if (f[3].Length > 0) t.Compatibility[cp] = Hex(f[3]);
            if (f[4].Length > 0) { var pair = Hex(f[4]); t.Compose[Key(pair[0], pair[1])] = cp; t.Seconds.Add(pair[1]); t.Composites.Add(cp); }
        }
        for (int c = 0; c < 65536; c++)
        {
            if (char.IsSurrogate((char)c)) continue;
            byte flags = 0;
            foreach (UnicodeForm form in Enum.GetValues<UnicodeForm>()) if (!IsStable(c, form, t)) flags |= (byte)(1 << (int)form);
            t.Unsafe[c] = flags;
        }
        return t;

        static int[] Hex(string s) => s.Split(' ').Select(h => Convert.ToInt32(h, 16)).ToArray();
    }

    /// <summary>True for a combining mark (general category M) in the data's Unicode version, which may be older than
    /// .NET's: Hugging Face's StripAccents uses an older table, and marks added since must stay.</summary>
    public static bool IsCombiningMark(int cp)
    {
        var marks = Data.Value.Marks;
        int lo = 0, hi = marks.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >> 1;
            if (cp < marks[mid].First) hi = mid - 1;
            else if (cp > marks[mid].Last) lo = mid + 1;
            else return true;
        }
        return false;
    }

    /// <summary>True when <paramref name="cp"/> is its own normal form whatever surrounds it.</summary>
    private static bool IsStable(int cp, UnicodeForm form, Tables t)
    {
        if (t.Ccc.ContainsKey(cp) || t.Seconds.Contains(cp)) return false;
        if (cp - LBase is >= 0 and < LCount || cp - VBase is >= 0 and < VCount || cp - TBase is > 0 and < TCount) return false;
        bool compose = form is UnicodeForm.Nfc or UnicodeForm.Nfkc;
        bool compat = form is UnicodeForm.Nfkc or UnicodeForm.Nfkd;
        if ((uint)(cp - SBase) < SCount) return compose;
        bool canonical = t.Canonical.ContainsKey(cp);
        if (compat && t.Compatibility.TryGetValue(cp, out var k) && !(canonical && k.AsSpan().SequenceEqual(t.Canonical[cp]))) return false;
        return !canonical || compose && t.Composites.Contains(cp);
    }

    private static long Key(int a, int b) => ((long)a << 21) | (uint)b;

    /// <summary><paramref name="text"/> in normalization form <paramref name="form"/> (valid UTF-16 expected;
    /// lone surrogates pass through unchanged).</summary>
    public static string Normalize(string text, UnicodeForm form) => Normalize(text, form, quickCheck: true);

    /// <summary><see cref="Normalize(string, UnicodeForm)"/>; without <paramref name="quickCheck"/> always the full
    /// algorithm (the reference the quick check is tested against).</summary>
    internal static string Normalize(string text, UnicodeForm form, bool quickCheck)
    {
        bool compat = form is UnicodeForm.Nfkc or UnicodeForm.Nfkd;
        var t = Data.Value;
        if (quickCheck && IsNormalized(text, form, t)) return text;

        var cps = new List<int>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            int cp = text[i];
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                cp = char.ConvertToUtf32(text[i], text[++i]);
            Decompose(cp, compat, t, cps);
        }
        Reorder(cps, t);
        if (form is UnicodeForm.Nfc or UnicodeForm.Nfkc) Compose(cps, t);

        var sb = new StringBuilder(cps.Count);
        foreach (int cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    /// <summary>Quick check: no character that may change or change its neighbours.</summary>
    private static bool IsNormalized(string text, UnicodeForm form, Tables t)
    {
        byte bit = (byte)(1 << (int)form);
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c < 0x300) { if (c >= 0xA0 && (t.Unsafe[c] & bit) != 0) return false; continue; }
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                if (!IsStable(char.ConvertToUtf32(c, text[++i]), form, t)) return false;
            }
            else if ((t.Unsafe[c] & bit) != 0) return false;
        }
        return true;
    }

    private static void Decompose(int cp, bool compat, Tables t, List<int> output)
    {
        int s = cp - SBase;
        if ((uint)s < SCount)
        {
            output.Add(LBase + s / NCount);
            output.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (compat && t.Compatibility.TryGetValue(cp, out var k)) output.AddRange(k);
        else if (t.Canonical.TryGetValue(cp, out var d)) output.AddRange(d);
        else output.Add(cp);
    }

    private static int Ccc(int cp, Tables t) => t.Ccc.TryGetValue(cp, out byte c) ? c : 0;

    /// <summary>Canonical ordering: a stable sort by combining class of each run of non-starters.</summary>
    private static void Reorder(List<int> cps, Tables t)
    {
        for (int i = 1; i < cps.Count; i++)
        {
            int c = Ccc(cps[i], t);
            if (c == 0) continue;
            int cp = cps[i], j = i;
            while (j > 0 && Ccc(cps[j - 1], t) > c) { cps[j] = cps[j - 1]; j--; }
            cps[j] = cp;
        }
    }

    /// <summary>Canonical composition (UAX #15): each character joins the last starter unless blocked.</summary>
    private static void Compose(List<int> cps, Tables t)
    {
        if (cps.Count == 0) return;
        int starterPos = 0, starter = cps[0];
        int lastClass = Ccc(starter, t);
        if (lastClass != 0) lastClass = 256; // a leading non-starter never composes
        int target = 1;
        for (int i = 1; i < cps.Count; i++)
        {
            int ch = cps[i], chClass = Ccc(ch, t);
            int composite = ComposePair(starter, ch, t);
            if (composite >= 0 && (lastClass < chClass || lastClass == 0))
            {
                cps[starterPos] = composite;
                starter = composite;
                continue;
            }
            if (chClass == 0) { starterPos = target; starter = ch; }
            lastClass = chClass;
            cps[target++] = ch;
        }
        cps.RemoveRange(target, cps.Count - target);
    }

    private static int ComposePair(int a, int b, Tables t)
    {
        int l = a - LBase, v = b - VBase;
        if ((uint)l < LCount && (uint)v < VCount) return SBase + (l * VCount + v) * TCount;
        int s = a - SBase, tt = b - TBase;
        if ((uint)s < SCount && s % TCount == 0 && tt > 0 && tt < TCount) return a + tt;
        return t.Compose.TryGetValue(Key(a, b), out int c) ? c : -1;
    }
}
