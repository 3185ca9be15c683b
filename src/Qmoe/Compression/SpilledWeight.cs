using Qmoe.Models.Layers;

namespace Qmoe.Compression;

/// <summary>
/// Rows [first, first + rows) of an activation buffer as a weight matrix, whose pages leave the resident set after
/// every product when the buffer is spilled: recomputing a layer with its dequantized experts touches every expert
/// once per chunk (DeepSeek-V3 width, 64 experts: 5.6 GB of spilled bf16 weights), which would otherwise all count
/// in RSS until the chunk ends.
/// </summary>
internal sealed class SpilledWeight(ActivationBuffer buffer, long first, int rows) : IWeightMatrix
{
    private readonly Matrix _w = buffer.Matrix(first, rows);

    public int Rows => _w.Rows;
    public int Cols => _w.Cols;

    public void Multiply(ReadOnlySpan<float> x, int n, Span<float> y)
    {
        _w.Multiply(x, n, y);
        buffer.TrimRows(first, rows);
    }
}
