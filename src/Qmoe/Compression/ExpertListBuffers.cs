namespace Qmoe.Compression;

/// <summary>
/// The per-expert list buffers of one sparse layer: for each expert, the rows of the layer input that its
/// router sent it (kept tokens; with pre-masking only those allowed into the Hessian), appended while the
/// calibration samples stream through the block and gathered into one contiguous [n, Dim] batch per expert
/// when its group is quantized. Rows live in an <see cref="ActivationBuffer"/> (RAM or spill file); the lists
/// hold row indices and each entry's gate weight (the factor the expert's output enters the residual with). Experts are capped at <c>cap</c> tokens (the first ones in sample order) so one popular
/// expert cannot dominate time and memory.
/// </summary>
public sealed class ExpertListBuffers
{
    private readonly List<long>[] _rows;
    private readonly List<float>[] _gates;
    private readonly ActivationBuffer _input;

    public ExpertListBuffers(int experts, ActivationBuffer layerInput)
    {
        _rows = Enumerable.Range(0, experts).Select(_ => new List<long>()).ToArray();
        _gates = Enumerable.Range(0, experts).Select(_ => new List<float>()).ToArray();
        _input = layerInput;
    }

    public int Experts => _rows.Length;

    /// <summary>
    /// Appends each routed token of a chunk to the lists of its experts (all top-k of them): the token's row is
    /// <paramref name="row0"/> + its index in the chunk. Tokens dropped by capacity are skipped, and so are
    /// positions that <paramref name="hessianMask"/> (per sample of the whole set, chunk starting at sample
    /// <paramref name="seq0"/>) excludes from the Hessians.
    /// </summary>
    public void Append(Models.Moe.Routing routing, Models.Layers.SequenceBatch batch, long row0, bool[][]? hessianMask, int seq0)
    {
        for (int s = 0; s < batch.Count; s++)
            for (int p = 0; p < batch.Lengths[s]; p++)
            {
                int t = batch.Offsets[s] + p;
                if (hessianMask != null && !hessianMask[seq0 + s][p]) continue;
                for (int j = 0; j < routing.K; j++)
                {
                    int i = t * routing.K + j;
                    if (!routing.Kept[i]) continue;
                    _rows[routing.Expert[i]].Add(row0 + t);
                    _gates[routing.Expert[i]].Add(routing.Weight[i]);
                }
            }
    }

    /// <summary>Tokens routed to the expert (before the cap).</summary>
    public int Count(int expert) => _rows[expert].Count;

    /// <summary>Applies the token cap: factor × mean tokens per expert (≤ 0: no cap). Returns the capped experts.</summary>
    public IReadOnlyList<(int Expert, int Tokens, int Cap)> Cap(double factor)
    {
        var capped = new List<(int, int, int)>();
        if (factor <= 0) return capped;
        double mean = _rows.Average(r => (double)r.Count);
        int cap = Math.Max(1, (int)Math.Ceiling(factor * mean));
        for (int e = 0; e < _rows.Length; e++)
            if (_rows[e].Count > cap)
            {
                capped.Add((e, _rows[e].Count, cap));
                _rows[e].RemoveRange(cap, _rows[e].Count - cap);
                _gates[e].RemoveRange(cap, _gates[e].Count - cap);
            }
        return capped;
    }

    /// <summary>Width of a row (the layer's model width).</summary>
    public int Dim => _input.Width;

    /// <summary>The expert's rows as one contiguous batch X [n, Dim] (n · Dim must fit in an array; see the chunked overload).</summary>
    public float[] Gather(int expert)
    {
        int n = _rows[expert].Count;
        var x = new float[checked(n * Dim)];
        Gather(expert, 0, n, x);
        return x;
    }

    /// <summary>Rows [first, first + count) of the expert's list into <paramref name="x"/> [count, Dim]. A spilled layer
    /// input's pages leave the resident set after the copy: an expert's rows are spread over the whole input, so
    /// streaming one expert through its Hessian touched most of a 4 GiB spill file (Mixtral-8x7B, 128 x 2048 tokens:
    /// 3.9 GB of file pages on top of the working set) before the expert's trim.</summary>
    public void Gather(int expert, int first, int count, Span<float> x)
    {
        var list = _rows[expert];
        int d = Dim;
        if (first < 0 || count < 0 || (long)first + count > list.Count || (long)count * d > x.Length)
            throw new ArgumentOutOfRangeException(nameof(count), $"rows [{first}, {(long)first + count}) of {list.Count}, room for {x.Length / Math.Max(1, d)}");
        for (int i = 0; i < count; i++) _input.Slice(list[first + i], 1).CopyTo(x.Slice(i * d, d)); // i · d < x.Length
        _input.Trim();
    }

    /// <summary>Gate weights of entries [first, first + count) of the expert's list.</summary>
    public ReadOnlySpan<float> Gates(int expert, int first, int count) =>
        System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_gates[expert]).Slice(first, count);

    /// <summary>Test hook: appends row <paramref name="row"/> of the layer input to an expert's list.</summary>
    internal void AppendRow(int expert, long row)
    {
        if (row < 0 || row >= _input.Rows) throw new ArgumentOutOfRangeException(nameof(row));
        _rows[expert].Add(row);
        _gates[expert].Add(1f);
    }
}
