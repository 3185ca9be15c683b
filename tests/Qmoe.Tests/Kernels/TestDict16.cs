using Qmoe.IO;

namespace Qmoe.Tests.Kernels;

/// <summary>
/// A small stand-in for the codec in kernel tests: a prefix-closed dict16 dictionary in the SPEC layout (all
/// pair sequences of length ≤ 4, zero runs up to 14, random extensions up to 14 pairs biased to zeros), a
/// greedy longest-match encoder of one ternary matrix, and ternary matrix makers. The kernels must work with
/// any valid dictionary, since the file carries its own.
/// </summary>
internal sealed class TestDict16
{
    public uint[] Dictionary { get; } = new uint[2 * 65536];
    private readonly Dictionary<ulong, ushort> _codeOf = new();
    private readonly List<ulong>[] _extensions; // per code: keys of entries one pair longer

    // key: pair nibbles (t0 | t1 << 2) 4 bits each, pair 0 lowest, plus the length at bit 56.
    private static ulong Key(ReadOnlySpan<byte> pairs)
    {
        ulong k = (ulong)pairs.Length << 56;
        for (int i = 0; i < pairs.Length; i++) k |= (ulong)pairs[i] << (4 * i);
        return k;
    }

    private static int Length(ulong key) => (int)(key >> 56);
    private static byte Pair(ulong key, int i) => (byte)((key >> (4 * i)) & 15);
    private static byte Nibble(int s) => (byte)(s % 3 | (s / 3) << 2);

    public static TestDict16 Default { get; } = new(1234);

    public TestDict16(int seed)
    {
        var rnd = new Random(seed);
        var keys = new List<ulong>();
        var set = new HashSet<ulong>();
        void Add(ulong k) { if (set.Add(k)) keys.Add(k); }
        Span<byte> p = stackalloc byte[14];
        for (int len = 1; len <= 4; len++)
        {
            int count = (int)Math.Pow(9, len);
            for (int v = 0; v < count; v++)
            {
                for (int i = 0, u = v; i < len; i++, u /= 9) p[i] = Nibble(u % 9);
                Add(Key(p[..len]));
            }
        }
        p.Clear();
        for (int len = 5; len <= 14; len++) Add(Key(p[..len]));
        while (keys.Count < 65536)
        {
            ulong parent = keys[rnd.Next(keys.Count)];
            int len = Length(parent);
            if (len == 14) continue;
            for (int i = 0; i < len; i++) p[i] = Pair(parent, i);
            p[len] = Nibble(RandomTrit(rnd, 0.885) + 3 * RandomTrit(rnd, 0.885));
            Add(Key(p[..(len + 1)]));
        }
        _extensions = new List<ulong>[65536];
        for (int c = 0; c < 65536; c++)
        {
            ulong k = keys[c];
            int len = Length(k);
            uint w0 = (uint)len, w1 = (uint)len;
            for (int i = 0; i < len; i++)
            {
                if (i < 7) w0 |= (uint)Pair(k, i) << (4 + 4 * i);
                else w1 |= (uint)Pair(k, i) << (4 + 4 * (i - 7));
            }
            Dictionary[2 * c] = w0; Dictionary[2 * c + 1] = w1;
            _codeOf[k] = (ushort)c;
            _extensions[c] = new List<ulong>();
        }
        foreach (var k in keys)
            if (Length(k) > 1) _extensions[_codeOf[Prefix(k)]].Add(k);
    }

    private static ulong Prefix(ulong key)
    {
        int len = Length(key) - 1;
        return (key & ((1UL << (4 * len)) - 1)) | (ulong)len << 56;
    }

    public static int RandomTrit(Random rnd, double p0)
    {
        double u = rnd.NextDouble();
        return u < p0 ? 0 : u < p0 + (1 - p0) / 2 ? 1 : 2;
    }

    /// <summary>
    /// Encodes trits [rows, cols] (0 zero, 1 min, 2 max) row by row, greedy longest match. With
    /// <paramref name="padTail"/> a row's last codeword is replaced, when possible, by a longer entry
    /// starting the same way, so it covers random trits beyond the row end (which decoders must ignore).
    /// </summary>
    public (ushort[] Codes, int[] RowOffsets) Encode(byte[] trits, int rows, int cols, Random? padTail = null)
    {
        var codes = new List<ushort>();
        var offsets = new int[rows + 1];
        int npairs = (cols + 1) / 2;
        var pairs = new byte[npairs];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < npairs; i++)
            {
                int t0 = trits[r * cols + 2 * i], t1 = 2 * i + 1 < cols ? trits[r * cols + 2 * i + 1] : 0;
                pairs[i] = (byte)(t0 | t1 << 2);
            }
            for (int i = 0; i < npairs;)
            {
                ushort best = 0; int bestLen = 0;
                for (int len = 1; len <= 14 && i + len <= npairs; len++)
                {
                    if (!_codeOf.TryGetValue(Key(pairs.AsSpan(i, len)), out var c)) break;
                    best = c; bestLen = len;
                }
                codes.Add(best);
                i += bestLen;
            }
            if (padTail != null)
            {
                ushort last = codes[^1];
                for (int grow = padTail.Next(4); grow > 0 && _extensions[last].Count > 0; grow--)
                {
                    var ext = _extensions[last];
                    last = _codeOf[ext[padTail.Next(ext.Count)]];
                }
                codes[^1] = last;
            }
            offsets[r + 1] = codes.Count;
        }
        return (codes.ToArray(), offsets);
    }

    /// <summary>Random trits [rows, cols] with a zero fraction drawn per row from <paramref name="zeroFractions"/>.</summary>
    public static byte[] RandomTrits(Random rnd, int rows, int cols, params double[] zeroFractions)
    {
        var t = new byte[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            double p0 = zeroFractions[rnd.Next(zeroFractions.Length)];
            for (int j = 0; j < cols; j++) t[r * cols + j] = (byte)RandomTrit(rnd, p0);
        }
        return t;
    }

    /// <summary>Random bf16 (min, max) per row: min &lt; 0 &lt; max.</summary>
    public static ushort[] RandomScales(Random rnd, int rows)
    {
        var s = new ushort[2 * rows];
        for (int r = 0; r < rows; r++)
        {
            s[2 * r] = BFloat16.FromFloat(-(float)(0.01 + rnd.NextDouble()));
            s[2 * r + 1] = BFloat16.FromFloat((float)(0.01 + rnd.NextDouble()));
        }
        return s;
    }
}
