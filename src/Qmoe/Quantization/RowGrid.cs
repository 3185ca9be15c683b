using Qmoe.IO;

namespace Qmoe.Quantization;

/// <summary>
/// One quantization grid per row of a weight matrix W [rows, cols], fitted to the row's values.
/// Ternary: levels {lo, 0, hi} with lo = bf16(min(row, 0)), hi = bf16(max(row, 0)) (rounded first so that the
/// stored bf16 scales are exact, SPEC §5); codes 0 = zero, 1 = lo, 2 = hi; nearest point, ties to zero.
/// n-bit: the GPTQ authors' asymmetric Quantizer (sym=False): range [min(row, 0), max(row, 0)] (or [-1, 1] for an
/// all-zero row), scale = range / maxq, zero = round(-min / scale), code = clamp(round(x / scale) + zero, 0, maxq),
/// value = scale · (code - zero); rounding half to even as torch.round.
/// </summary>
public sealed class RowGrid
{
    private readonly float[] _a, _b; // ternary: lo, hi; n-bit: scale, zero
    private readonly int _maxq;

    private RowGrid(QuantType type, float[] a, float[] b)
    {
        Type = type;
        _a = a;
        _b = b;
        _maxq = QuantTypeInfo.Of(type).Levels - 1;
    }

    /// <summary>The quantization type.</summary>
    public QuantType Type { get; }

    /// <summary>Number of rows.</summary>
    public int Rows => _a.Length;

    /// <summary>Fits a grid to each row of w [rows, cols]. Ternary: <paramref name="stretch"/> &gt; 1 widens the levels
    /// to {stretch · min, 0, stretch · max}, so more weights round to 0 (a sparser, cheaper code; issue 16).</summary>
    public static RowGrid Fit(QuantType type, ReadOnlySpan<float> w, int rows, int cols, float stretch = 1f)
    {
        if (rows < 0 || cols <= 0 || (long)rows * cols > w.Length) throw new ArgumentException($"RowGrid: {w.Length} values for {rows}x{cols}");
        var a = new float[rows];
        var b = new float[rows];
        int maxq = QuantTypeInfo.Of(type).Levels - 1;
        for (int r = 0; r < rows; r++)
        {
            var row = w.Slice(r * cols, cols);
            float min = Math.Min(System.Numerics.Tensors.TensorPrimitives.Min(row), 0f);
            float max = Math.Max(System.Numerics.Tensors.TensorPrimitives.Max(row), 0f);
            if (!float.IsFinite(min) || !float.IsFinite(max)) throw new QmoeException($"weight row {r} holds a non-finite value");
            if (type == QuantType.Ternary)
            {
                a[r] = BFloat16.Round(min * stretch);
                b[r] = BFloat16.Round(max * stretch);
                continue;
            }
            if (min == 0f && max == 0f) { min = -1f; max = 1f; }
            float scale = (max - min) / maxq;
            a[r] = scale;
            b[r] = MathF.Round(-min / scale);
        }
        return new RowGrid(type, a, b);
    }

    /// <summary>The grid point nearest to <paramref name="x"/> in row <paramref name="row"/>, and its code.</summary>
    public float Quantize(int row, float x, out byte code)
    {
        if (Type == QuantType.Ternary)
        {
            float lo = _a[row], hi = _b[row];
            if (hi > 0f && x > 0.5f * hi) { code = 2; return hi; }
            if (lo < 0f && x < 0.5f * lo) { code = 1; return lo; }
            code = 0;
            return 0f;
        }
        float scale = _a[row], zero = _b[row];
        float q = Math.Clamp(MathF.Round(x / scale) + zero, 0f, _maxq);
        code = (byte)q;
        return scale * (q - zero);
    }

    /// <summary>
    /// Quantizes x[i], a value of row <paramref name="row0"/> + i, for all i: q[i] = grid point, codes[i] = its code.
    /// The same arithmetic as <see cref="Quantize"/>, with the type dispatch hoisted out of the loop.
    /// </summary>
    internal void QuantizeRows(int row0, ReadOnlySpan<float> x, Span<float> q, Span<byte> codes)
    {
        if (Type == QuantType.Ternary)
        {
            var lo = _a.AsSpan(row0, x.Length);
            var hi = _b.AsSpan(row0, x.Length);
            for (int i = 0; i < x.Length; i++)
            {
                float v = x[i], h = hi[i], l = lo[i];
                if (h > 0f && v > 0.5f * h) { codes[i] = 2; q[i] = h; }
                else if (l < 0f && v < 0.5f * l) { codes[i] = 1; q[i] = l; }
                else { codes[i] = 0; q[i] = 0f; }
            }
            return;
        }
        var scale = _a.AsSpan(row0, x.Length);
        var zero = _b.AsSpan(row0, x.Length);
        for (int i = 0; i < x.Length; i++)
        {
            float c = Math.Clamp(MathF.Round(x[i] / scale[i]) + zero[i], 0f, _maxq);
            codes[i] = (byte)c;
            q[i] = scale[i] * (c - zero[i]);
        }
    }

    /// <summary>Ternary only: per row the bf16 (min, max) levels, [rows, 2] — the codec's scales.</summary>
    public ushort[] TernaryScales()
    {
        if (Type != QuantType.Ternary) throw new InvalidOperationException("TernaryScales: grid is not ternary");
        var s = new ushort[2 * Rows];
        for (int r = 0; r < Rows; r++)
        {
            s[2 * r] = BFloat16.FromFloat(_a[r]);
            s[2 * r + 1] = BFloat16.FromFloat(_b[r]);
        }
        return s;
    }

    /// <summary>n-bit only: per row (scale, zero point), [rows, 2]; value = scale · (code - zero).</summary>
    public float[] ScaleAndZero()
    {
        if (Type == QuantType.Ternary) throw new InvalidOperationException("ScaleAndZero: grid is ternary");
        var s = new float[2 * Rows];
        for (int r = 0; r < Rows; r++) { s[2 * r] = _a[r]; s[2 * r + 1] = _b[r]; }
        return s;
    }
}
