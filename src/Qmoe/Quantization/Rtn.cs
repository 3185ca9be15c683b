using System.Runtime.CompilerServices;
namespace Qmoe.Quantization;

/// <summary>Round-to-nearest quantization: every weight to the nearest point of its row's grid (the baseline).</summary>
public static class Rtn
{
    /// <summary>Quantizes w [rows, cols] row-major.</summary>
    public static QuantizedWeight Quantize(QuantType type, ReadOnlySpan<float> w, int rows, int cols, float ternaryStretch = 1f) =>
        Quantize(RowGrid.Fit(type, w, rows, cols, ternaryStretch), w, cols, null);

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    internal static QuantizedWeight Quantize(RowGrid grid, ReadOnlySpan<float> w, int cols, string? fallback)
    {
        int rows = grid.Rows;
        var codes = new byte[rows * cols];
        var q = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                int i = r * cols + c;
                q[i] = grid.Quantize(r, w[i], out codes[i]);
            }
        return new QuantizedWeight(grid, cols, codes, q, QuantMethod.Rtn, fallback, 0);
    }
}
