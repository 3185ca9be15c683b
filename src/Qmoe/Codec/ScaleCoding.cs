using System.Numerics;

namespace Qmoe.Codec;

/// <summary>
/// Lossless compact form of a group's bf16 row scales (format v2): a row's min and max share few distinct
/// sign+exponent patterns (2-3 per group on real weights), so each scale is stored as an index into a table of
/// those patterns (the top 9 bits of the bf16) followed by its 7 mantissa bits, in fixed-width fields
/// (w = ⌈log2 K⌉ + 7 bits for K patterns) packed LSB first. Typically 9 instead of 16 bits per scale.
/// </summary>
internal static class ScaleCoding
{
    private const int MantissaBits = 7;
    private const int Patterns = 1 << 9; // sign + 8 exponent bits

    public static int FieldBits(int tableCount) =>
        MantissaBits + (tableCount <= 1 ? 0 : 32 - BitOperations.LeadingZeroCount((uint)tableCount - 1));

    public static long FieldBytes(long scales, int tableCount) => (scales * FieldBits(tableCount) + 7) / 8;

    /// <summary>Table (ascending sign+exponent patterns) and packed fields of <paramref name="scales"/> (bf16 bits).</summary>
    public static (ushort[] Table, byte[] Fields) Encode(ReadOnlySpan<ushort> scales)
    {
        var table = Table(scales);
        return (table, Encode(scales, table));
    }

    /// <summary>The ascending sign+exponent patterns present in <paramref name="scales"/>.</summary>
    public static ushort[] Table(ReadOnlySpan<ushort> scales)
    {
        var present = new bool[Patterns];
        foreach (var s in scales) present[s >> MantissaBits] = true;
        return Enumerable.Range(0, Patterns).Where(p => present[p]).Select(p => (ushort)p).ToArray();
    }

    /// <summary>The packed fields of <paramref name="scales"/> against a <paramref name="table"/> holding all their patterns
    /// (a group's table, shared by the parts of a group split over shards).</summary>
    public static byte[] Encode(ReadOnlySpan<ushort> scales, ushort[] table)
    {
        var index = new int[Patterns];
        Array.Fill(index, -1);
        for (int i = 0; i < table.Length; i++) index[table[i]] = i;
        int w = FieldBits(table.Length);
        var fields = new byte[FieldBytes(scales.Length, table.Length)];
        for (int i = 0; i < scales.Length; i++)
        {
            int k = index[scales[i] >> MantissaBits];
            if (k < 0) throw new ArgumentException($"scale {i} ({scales[i]:x4}) has a pattern missing from the table");
            int v = k << MantissaBits | (scales[i] & ((1 << MantissaBits) - 1));
            long bit = (long)i * w;
            for (int b = 0; b < w; b++, bit++)
                if ((v >> b & 1) != 0) fields[bit >> 3] |= (byte)(1 << (int)(bit & 7));
        }
        return fields;
    }

    /// <summary>Rebuilds <paramref name="count"/> bf16 scales, checking the table, every index and the padding.</summary>
    public static ushort[] Decode(ReadOnlySpan<ushort> table, ReadOnlySpan<byte> fields, long count, string where)
    {
        if (table.Length is < 1 or > Patterns) throw new QmoeException($"{where}: scale table has {table.Length} entries (must be 1..{Patterns})");
        for (int i = 0; i < table.Length; i++)
            if (table[i] >= Patterns || (i > 0 && table[i] <= table[i - 1]))
                throw new QmoeException($"{where}: scale table entry {i} ({table[i]}) is not an ascending 9-bit pattern");
        if (fields.Length != FieldBytes(count, table.Length))
            throw new QmoeException($"{where}: {fields.Length} bytes of scale fields, expected {FieldBytes(count, table.Length)}");
        int w = FieldBits(table.Length);
        var scales = new ushort[count];
        long bit = 0;
        for (long i = 0; i < count; i++)
        {
            int v = 0;
            for (int b = 0; b < w; b++, bit++) v |= (fields[(int)(bit >> 3)] >> (int)(bit & 7) & 1) << b;
            int idx = v >> MantissaBits;
            if (idx >= table.Length) throw new QmoeException($"{where}: scale {i} uses table entry {idx} of {table.Length}");
            scales[i] = (ushort)(table[idx] << MantissaBits | (v & ((1 << MantissaBits) - 1)));
        }
        for (; bit < 8L * fields.Length; bit++)
            if ((fields[(int)(bit >> 3)] >> (int)(bit & 7) & 1) != 0) throw new QmoeException($"{where}: scale fields have stray padding bits");
        return scales;
    }
}
