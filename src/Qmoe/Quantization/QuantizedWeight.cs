namespace Qmoe.Quantization;

/// <summary>How a weight was quantized.</summary>
public enum QuantMethod
{
    /// <summary>GPTQ.</summary>
    Gptq,
    /// <summary>Round to nearest (requested, or a fallback: see <see cref="QuantizedWeight.Fallback"/>).</summary>
    Rtn,
}

/// <summary>A quantized weight matrix W [rows, cols]: per-weight codes, the row grids and the dequantized values.</summary>
public sealed class QuantizedWeight
{
    internal QuantizedWeight(RowGrid grid, int cols, byte[] codes, float[] dequantized, QuantMethod method, string? fallback, double damp)
    {
        Grid = grid;
        Cols = cols;
        Codes = codes;
        Dequantized = dequantized;
        Method = method;
        Fallback = fallback;
        Damp = damp;
    }

    /// <summary>The quantization type.</summary>
    public QuantType Type => Grid.Type;
    /// <summary>Rows of W.</summary>
    public int Rows => Grid.Rows;
    /// <summary>Columns of W.</summary>
    public int Cols { get; }
    /// <summary>The per-row grids.</summary>
    public RowGrid Grid { get; }
    /// <summary>
    /// [rows, cols] row-major. Ternary: the trit of SPEC §5 (0 = zero, 1 = row min, 2 = row max); n-bit: the
    /// integer level 0 .. 2^bits - 1.
    /// </summary>
    public byte[] Codes { get; }
    /// <summary>[rows, cols] row-major: the grid values (for fake-quant checkpoints and the quantized forward pass).</summary>
    public float[] Dequantized { get; }
    /// <summary>Ternary only: bf16 (min, max) per row, [rows, 2] — what the codec stores.</summary>
    public ushort[] TernaryScales() => Grid.TernaryScales();
    /// <summary>The method actually used.</summary>
    public QuantMethod Method { get; }
    /// <summary>Why GPTQ fell back to RTN ("no calibration tokens", "Cholesky failed ..."); null otherwise.</summary>
    public string? Fallback { get; }
    /// <summary>The relative damping that succeeded (GPTQ), else 0.</summary>
    public double Damp { get; }
}
