using Qmoe.Quantization;

namespace Qmoe.Codec;

/// <summary>
/// One n-bit (2, 3 or 4) expert matrix W [Rows, Cols] as stored (docs/FORMAT.md, "n-bit experts"): the GPTQ grid
/// indices bit-packed row by row, and per row the grid as the quantizer produced it, weight = scale · (code − zero).
/// Row r occupies <c>Packed[r · RowBytes .. (r + 1) · RowBytes]</c>; code j sits at bit j · Bits of that range,
/// least significant bit first (little-endian bit stream), so 8 codes always start on a byte boundary
/// (byte 8k·Bits/8 = k·Bits) — what the SIMD kernels rely on. Padding bits at a row's end are 0.
/// </summary>
public sealed record PackedNBitMatrix(int Bits, int Rows, int Cols, byte[] Packed, float[] RowScales, byte[] RowZeros)
{
    /// <summary>Bytes per packed row: ⌈cols · bits / 8⌉.</summary>
    public static long RowBytesOf(int bits, int cols) => ((long)cols * bits + 7) / 8;

    public long RowBytes => RowBytesOf(Bits, Cols);

    /// <summary>Whether <paramref name="bits"/> is a stored n-bit width (2, 3 or 4).</summary>
    public static bool IsSupportedBits(int bits) => bits is 2 or 3 or 4;

    /// <summary>Bits of an n-bit <see cref="QuantType"/>; throws for ternary.</summary>
    public static int BitsOf(QuantType type) => type switch
    {
        QuantType.Int2 => 2,
        QuantType.Int3 => 3,
        QuantType.Int4 => 4,
        _ => throw new ArgumentException($"{type} is not an n-bit type", nameof(type)),
    };

    /// <summary>Packs a quantizer's output (codes [rows, cols] in 0 .. 2^bits − 1, grid (scale, zero) per row).</summary>
    public static PackedNBitMatrix FromQuantized(QuantizedWeight q)
    {
        int bits = BitsOf(q.Type);
        var sz = q.Grid.ScaleAndZero();
        var scales = new float[q.Rows];
        var zeros = new byte[q.Rows];
        for (int r = 0; r < q.Rows; r++)
        {
            scales[r] = sz[2 * r];
            zeros[r] = checked((byte)sz[2 * r + 1]); // zero = round(-min / scale) ∈ [0, maxq]
        }
        return new PackedNBitMatrix(bits, q.Rows, q.Cols, Pack(q.Codes, bits, q.Rows, q.Cols), scales, zeros);
    }

    /// <summary>Packs codes [rows, cols] (each &lt; 2^bits) into rows of <see cref="RowBytesOf"/> bytes.</summary>
    public static byte[] Pack(ReadOnlySpan<byte> codes, int bits, int rows, int cols)
    {
        if (!IsSupportedBits(bits)) throw new ArgumentOutOfRangeException(nameof(bits), bits, "bits must be 2, 3 or 4");
        if ((long)rows * cols != codes.Length) throw new ArgumentException($"{codes.Length} codes for [{rows}, {cols}]");
        long rowBytes = RowBytesOf(bits, cols);
        var packed = new byte[rows * rowBytes];
        int max = (1 << bits) - 1;
        for (int r = 0; r < rows; r++)
        {
            var dst = packed.AsSpan((int)(r * rowBytes), (int)rowBytes);
            var src = codes.Slice(r * cols, cols);
            for (int j = 0; j < cols; j++)
            {
                int c = src[j];
                if (c > max) throw new ArgumentException($"code {c} at row {r} column {j} does not fit {bits} bits");
                int bit = j * bits;
                int word = c << (bit & 7);
                dst[bit >> 3] |= (byte)word;
                if ((bit & 7) + bits > 8) dst[(bit >> 3) + 1] |= (byte)(word >> 8);
            }
        }
        return packed;
    }

    /// <summary>Code j of a packed row (the reference accessor every kernel is tested against).</summary>
    public static int Code(ReadOnlySpan<byte> row, int bits, int j)
    {
        int bit = j * bits;
        int lo = row[bit >> 3];
        int hi = (bit & 7) + bits > 8 ? row[(bit >> 3) + 1] : 0;
        return ((lo | hi << 8) >> (bit & 7)) & ((1 << bits) - 1);
    }

    /// <summary>
    /// Rows of packed codes as symbols relative to each row's zero point, (code − zero) mod 2^bits, one byte each
    /// [rows, cols] with rows = <paramref name="zeros"/>.Length: symbol 0 is the grid's zero level, the most frequent
    /// under GPTQ. What <c>inspect</c>'s entropy bound counts and what a coded 2-bit expert stores (docs/FORMAT.md).
    /// </summary>
    public static byte[] ZeroRelativeSymbols(ReadOnlySpan<byte> packed, ReadOnlySpan<byte> zeros, int bits, int cols)
    {
        long rowBytes = RowBytesOf(bits, cols);
        int mask = (1 << bits) - 1;
        var symbols = new byte[(long)zeros.Length * cols];
        for (int r = 0; r < zeros.Length; r++)
        {
            var row = packed.Slice((int)(r * rowBytes), (int)rowBytes);
            for (int j = 0; j < cols; j++) symbols[(long)r * cols + j] = (byte)((Code(row, bits, j) - zeros[r]) & mask);
        }
        return symbols;
    }

    /// <summary>Dequantizes row r of a packed matrix into <paramref name="dst"/> [cols]: scale · (code − zero), as the quantizer computes it.</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> row, int bits, float scale, float zero, Span<float> dst)
    {
        for (int j = 0; j < dst.Length; j++) dst[j] = scale * (Code(row, bits, j) - zero);
    }

    /// <summary>Checks shapes, finite scales and zero points within the grid; <paramref name="where"/> names the matrix.</summary>
    public void Validate(string where)
    {
        if (!IsSupportedBits(Bits)) throw new QmoeException($"{where}: {Bits} bits (must be 2, 3 or 4)");
        if (Rows <= 0 || Cols <= 0) throw new QmoeException($"{where}: bad shape [{Rows}, {Cols}]");
        if (Packed.LongLength != Rows * RowBytes) throw new QmoeException($"{where}: {Packed.LongLength} packed bytes, expected {Rows * RowBytes}");
        if (RowScales.Length != Rows || RowZeros.Length != Rows) throw new QmoeException($"{where}: grids for {RowScales.Length} / {RowZeros.Length} rows, expected {Rows}");
        for (int r = 0; r < Rows; r++)
        {
            if (!float.IsFinite(RowScales[r])) throw new QmoeException($"{where}: row {r} has a non-finite scale");
            if (RowZeros[r] >= 1 << Bits) throw new QmoeException($"{where}: row {r} zero point {RowZeros[r]} does not fit {Bits} bits");
        }
    }
}
