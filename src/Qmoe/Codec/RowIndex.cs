using System.Runtime.InteropServices;
using Qmoe.IO;

namespace Qmoe.Codec;

/// <summary>
/// Where each row's codes start, per expert. v1 stores I32 offsets [E, rows + 1] relative to the expert. v2 stores
/// either nothing — row boundaries are implied by the codes, since each row's codes cover exactly its width — or,
/// optionally, the codes per row [E, rows] in the narrowest of U8 / U16 / I32; the reader rebuilds the offsets
/// (4 bytes per row in memory) by a scan of the code lengths or a prefix sum of the counts.
/// </summary>
internal enum RowIndexKind { Offsets, Counts, Implicit }

/// <summary>The codes of expert e of a part (a view of the mapped file).</summary>
internal delegate ReadOnlySpan<ushort> ExpertCodes(int expert);

internal static class RowIndex
{
    /// <summary>The stored dtype of a group's row index (offsets [E, rows + 1], flat); counts use the narrowest that fits.</summary>
    public static DType StoredType(ReadOnlySpan<int> rowOffsets, int rows, RowIndexKind kind)
    {
        if (kind == RowIndexKind.Implicit) return DType.U8; // nothing stored
        if (kind == RowIndexKind.Offsets) return DType.I32;
        int max = 0;
        for (int e = 0; e < rowOffsets.Length; e += rows + 1)
            for (int r = e; r < e + rows; r++) max = Math.Max(max, rowOffsets[r + 1] - rowOffsets[r]);
        return max <= byte.MaxValue ? DType.U8 : max <= ushort.MaxValue ? DType.U16 : DType.I32;
    }

    /// <summary>Bytes of one expert's stored row index (empty for <see cref="RowIndexKind.Implicit"/>).</summary>
    public static byte[] ExpertBytes(ReadOnlySpan<int> offsets, RowIndexKind kind, DType type)
    {
        if (kind == RowIndexKind.Implicit) return [];
        if (kind == RowIndexKind.Offsets) return MemoryMarshal.AsBytes(offsets).ToArray();
        int rows = offsets.Length - 1;
        var bytes = new byte[rows * type.Size()];
        for (int r = 0; r < rows; r++)
        {
            int n = offsets[r + 1] - offsets[r];
            switch (type)
            {
                case DType.U8: bytes[r] = (byte)n; break;
                case DType.U16: BitConverter.TryWriteBytes(bytes.AsSpan(2 * r), (ushort)n); break;
                default: BitConverter.TryWriteBytes(bytes.AsSpan(4 * r), n); break;
            }
        }
        return bytes;
    }

    /// <summary>Stored bytes of the row index of <paramref name="experts"/> experts of <paramref name="rows"/> rows.</summary>
    public static long StoredBytes(long experts, int rows, RowIndexKind kind, DType type) => kind switch
    {
        RowIndexKind.Implicit => 0,
        RowIndexKind.Offsets => experts * (rows + 1L) * 4,
        _ => experts * rows * type.Size(),
    };

    /// <summary>
    /// Rebuilds v2 offsets [E, rows + 1] from counts [E, rows] and checks that each expert's counts add up to its
    /// code count; <paramref name="where"/> names the tensor in errors.
    /// </summary>
    public static int[] FromCounts(ReadOnlySpan<byte> counts, DType type, int experts, int rows, ReadOnlySpan<long> expertOffsets, string where)
    {
        var offsets = new int[(long)experts * (rows + 1)];
        for (int e = 0; e < experts; e++)
        {
            long sum = 0, codes = expertOffsets[e + 1] - expertOffsets[e];
            int baseIndex = checked(e * (rows + 1));
            for (int r = 0; r < rows; r++)
            {
                long i = (long)e * rows + r;
                sum += type switch
                {
                    DType.U8 => counts[(int)i],
                    DType.U16 => MemoryMarshal.Cast<byte, ushort>(counts)[(int)i],
                    _ => MemoryMarshal.Cast<byte, int>(counts)[(int)i],
                };
                if (sum > codes || sum < 0) throw new QmoeException($"{where}: expert {e} row {r}: row counts exceed the expert's {codes} codes");
                offsets[baseIndex + r + 1] = (int)sum;
            }
            if (sum != codes) throw new QmoeException($"{where}: expert {e}: row counts add up to {sum}, the expert has {codes} codes");
        }
        return offsets;
    }

    /// <summary>
    /// Rebuilds v2 offsets [E, rows + 1] from the codes alone: row r ends with the code that brings its covered
    /// width to ≥ cols. Also proves every row decodable; <paramref name="where"/> names the codes tensor in errors.
    /// </summary>
    /// <param name="codesOf">the group's codes, read per expert</param>
    /// <param name="expertOffsets">[E + 1] start of each expert's codes</param>
    /// <param name="experts">experts in the group (E)</param>
    /// <param name="rows">rows of each expert matrix</param>
    /// <param name="cols">columns of each expert matrix (the width a row's codes must cover)</param>
    /// <param name="dict">the model's dictionary (each code's covered width)</param>
    /// <param name="where">the codes tensor's name, for errors</param>
    /// <param name="types">per expert 0 = ternary, 5 = coded 2-bit (codes of <paramref name="dict4"/>), else bit-packed (no codes;
    /// its offsets stay 0); empty: all ternary</param>
    /// <param name="dict4">the four-level dictionary, for coded 2-bit experts</param>
    public static int[] FromCodes(ExpertCodes codesOf, ReadOnlySpan<long> expertOffsets, int experts, int rows, int cols,
        CodeDictionary dict, string where, ReadOnlySpan<byte> types = default, CodeDictionary? dict4 = null)
    {
        var offsets = new int[(long)experts * (rows + 1)];
        for (int e = 0; e < experts; e++)
        {
            bool coded = !types.IsEmpty && types[e] == NBitGroup.CodedTwoBitType;
            if (!types.IsEmpty && types[e] != NBitGroup.TernaryType && !coded) continue; // bit-packed: no codes
            var entries = coded ? dict4!.Entries : dict.Entries;
            var codes = codesOf(e); // this expert's codes (the part's codes tensor may exceed 2 GiB)
            int start = 0, end = codes.Length, k = start;
            int baseIndex = checked(e * (rows + 1));
            for (int r = 0; r < rows; r++)
            {
                long covered = 0;
                while (covered < cols)
                {
                    if (k == end) throw new QmoeException($"{where}: expert {e} codes end inside row {r}");
                    covered += 2 * (entries[2 * codes[k]] & 15);
                    k++;
                }
                offsets[baseIndex + r + 1] = k - start;
            }
            if (k != end) throw new QmoeException($"{where}: expert {e} has {end - k} codes past its last row");
        }
        return offsets;
    }

    /// <summary>Checks v1 offsets in place: each expert's start at 0, monotone, ending at the expert's code count.</summary>
    public static void CheckOffsets(ReadOnlySpan<int> offsets, int experts, int rows, ReadOnlySpan<long> expertOffsets, string where)
    {
        for (int e = 0; e < experts; e++)
        {
            var o = offsets.Slice(e * (rows + 1), rows + 1);
            long codes = expertOffsets[e + 1] - expertOffsets[e];
            if (o[0] != 0) throw new QmoeException($"{where}: expert {e} row 0 starts at {o[0]}, not 0");
            for (int r = 0; r < rows; r++)
                if (o[r + 1] < o[r]) throw new QmoeException($"{where}: expert {e} row offsets decrease at row {r}");
            if (o[rows] != codes) throw new QmoeException($"{where}: expert {e} rows end at {o[rows]}, the expert has {codes} codes");
        }
    }
}
