using System.Buffers;

namespace Qmoe.Codec;

/// <summary>
/// Greedy longest-match dict16 encoder (SPEC §5). Input: trits [rows, cols] row-major, one byte each
/// (0 = zero, 1 = row min, 2 = row max). Each row is cut into pairs (an odd last trit is paired with a zero) and
/// encoded on its own, so rows decode independently. With a four-level dictionary the input symbols are 0..3.
/// </summary>
public static unsafe class TernaryEncoder
{
    /// <summary>Rows per parallel work item are chosen so that one item holds about this many trits.</summary>
    private const int TritsPerChunk = 1 << 18;

    /// <summary>Codes a row of <paramref name="cols"/> trits can need at most (one per pair).</summary>
    public static int MaxCodesPerRow(int cols) => (cols + 1) / 2;

    /// <summary>Encodes a matrix, multi-threaded over blocks of rows (<paramref name="threads"/> ≤ 0: all cores).</summary>
    public static EncodedMatrix Encode(ReadOnlySpan<byte> trits, int rows, int cols, CodeDictionary dict, int threads = 0)
    {
        CheckInput(trits, rows, cols, dict);
        int rowsPerChunk = Math.Max(1, TritsPerChunk / Math.Max(cols, 1));
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        int maxRow = MaxCodesPerRow(cols);
        var rowOffsets = new int[rows + 1];
        var chunkCodes = new ushort[chunks][];
        var trie = dict.Trie;
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads > 0 ? threads : -1 };
        fixed (byte* p = trits)
        {
            nint basePtr = (nint)p;
            Parallel.For(0, chunks, options, chunk =>
            {
                int r0 = chunk * rowsPerChunk, r1 = Math.Min(rows, r0 + rowsPerChunk);
                var buffer = ArrayPool<ushort>.Shared.Rent(Math.Max(1, (r1 - r0) * maxRow));
                var pairs = ArrayPool<byte>.Shared.Rent(maxRow);
                int n = 0;
                for (int r = r0; r < r1; r++)
                {
                    var row = new ReadOnlySpan<byte>((byte*)basePtr + (long)r * cols, cols);
                    int count = EncodeRow(row, trie, pairs, buffer.AsSpan(n));
                    rowOffsets[r + 1] = count; // row lengths for now; prefix sums below
                    n += count;
                }
                chunkCodes[chunk] = buffer.AsSpan(0, n).ToArray();
                ArrayPool<ushort>.Shared.Return(buffer);
                ArrayPool<byte>.Shared.Return(pairs);
            });
        }
        for (int r = 0; r < rows; r++) rowOffsets[r + 1] = checked(rowOffsets[r + 1] + rowOffsets[r]);
        var codes = new ushort[rowOffsets[rows]];
        for (int chunk = 0; chunk < chunks; chunk++)
            chunkCodes[chunk].CopyTo(codes, rowOffsets[chunk * rowsPerChunk]);
        return new EncodedMatrix(rows, cols, codes, rowOffsets);
    }

    /// <summary>Encodes one row into <paramref name="codes"/> (room for <see cref="MaxCodesPerRow"/>); returns the code count.</summary>
    public static int EncodeRow(ReadOnlySpan<byte> row, CodeDictionary dict, Span<ushort> codes)
    {
        CheckInput(row, 1, row.Length, dict);
        var pairs = new byte[MaxCodesPerRow(row.Length)];
        return EncodeRow(row, dict.Trie, pairs, codes);
    }

    private static int EncodeRow(ReadOnlySpan<byte> row, DictionaryTrie trie, Span<byte> pairs, Span<ushort> codes)
    {
        int np = MaxCodesPerRow(row.Length), even = row.Length & ~1, levels = trie.Levels;
        for (int i = 0, j = 0; j < even; i++, j += 2) pairs[i] = (byte)(row[j] + levels * row[j + 1]);
        if (even < row.Length) pairs[np - 1] = row[even]; // odd width: the last trit pairs with a zero
        int n = 0;
        for (int pos = 0; pos < np;)
        {
            var (code, len) = trie.Match(pairs[pos..np]);
            codes[n++] = (ushort)code; // len ≥ 1: CheckInput ensured every single pair has an entry
            pos += len;
        }
        return n;
    }

    private static void CheckInput(ReadOnlySpan<byte> trits, int rows, int cols, CodeDictionary dict)
    {
        if (rows < 0 || cols < 0) throw new QmoeException($"encode: bad shape [{rows}, {cols}]");
        if (trits.Length != (long)rows * cols) throw new QmoeException($"encode: {trits.Length} trits for shape [{rows}, {cols}]");
        int bad = trits.IndexOfAnyInRange((byte)dict.Levels, (byte)255);
        if (bad >= 0) throw new QmoeException($"encode: symbol {trits[bad]} at row {bad / cols}, column {bad % cols} is not below {dict.Levels}");
        int missing = dict.Trie.MissingSingle;
        if (missing >= 0) throw new QmoeException($"encode: dictionary ({dict.Source}) has no entry for the single pair {missing}");
    }
}
