namespace Qmoe.Quantization;

/// <summary>One expert that fell back from GPTQ to RTN.</summary>
/// <param name="Name">The caller's name for the expert (e.g. its tensor name).</param>
/// <param name="Reason">Why (no calibration tokens, Cholesky failure).</param>
public sealed record GptqFallback(string Name, string Reason);

/// <summary>Result of <see cref="GptqBatch"/>'s Quantize.</summary>
/// <param name="Experts">Per expert, in input order.</param>
/// <param name="Fallbacks">The experts that were quantized by RTN instead, with names and reasons.</param>
public sealed record GptqBatchResult(IReadOnlyList<QuantizedWeight> Experts, IReadOnlyList<GptqFallback> Fallbacks);

/// <summary>
/// GPTQ over a group of experts of one layer: W [E, rows, cols], H [E, cols, cols]. On a CPU the batch dimension
/// is spread over threads (each expert on its own thread(s)), which keeps every core busy through GPTQ's
/// sequential column loop; since <see cref="Gptq"/> is bitwise independent of its thread count, the results are
/// identical to one-at-a-time runs. An expert without tokens or with a hopeless Hessian falls back to RTN and is
/// listed; only non-finite weights (a corrupt checkpoint) throw, as a <see cref="QmoeException"/> naming the expert.
/// W and H are read in place (no copies): each expert running adds <see cref="Gptq.WorkingBytes"/> at most.
/// </summary>
public static unsafe class GptqBatch
{
    /// <summary>
    /// Quantizes E = <paramref name="names"/>.Count experts. <paramref name="tokens"/>: calibration tokens per
    /// expert (empty = unknown; 0 forces the RTN fallback).
    /// </summary>
    public static GptqBatchResult Quantize(ReadOnlySpan<float> w, ReadOnlySpan<float> h, int rows, int cols,
        IReadOnlyList<string> names, ReadOnlySpan<long> tokens, GptqOptions options)
    {
        var all = new int[names.Count];
        for (int x = 0; x < all.Length; x++) all[x] = x;
        return Quantize(w, h, rows, cols, all, names, tokens, options);
    }

    /// <summary>
    /// As above for a subset of a group, without copying it out: expert j of the batch is the one at position
    /// <paramref name="experts"/>[j] of w [*, rows, cols] and h [*, cols, cols], named <paramref name="names"/>[j].
    /// <paramref name="expertDone"/> runs on the worker after each expert, its temporaries unreachable (e.g. to collect them).
    /// </summary>
    public static GptqBatchResult Quantize(ReadOnlySpan<float> w, ReadOnlySpan<float> h, int rows, int cols,
        ReadOnlySpan<int> experts, IReadOnlyList<string> names, ReadOnlySpan<long> tokens, GptqOptions options,
        Action? expertDone = null)
    {
        int e = names.Count;
        long wSize = (long)rows * cols, hSize = (long)cols * cols;
        if (experts.Length != e) throw new ArgumentException($"GptqBatch: {experts.Length} expert positions for {e} names");
        int span = 0;
        foreach (int x in experts)
        {
            if (x < 0) throw new ArgumentException($"GptqBatch: expert position {x}");
            span = Math.Max(span, x + 1);
        }
        if (rows <= 0 || cols <= 0 || span * wSize > w.Length) throw new ArgumentException($"GptqBatch: W has {w.Length} values, needs {span}x{rows}x{cols}");
        if (span * hSize > h.Length) throw new ArgumentException($"GptqBatch: H has {h.Length} values, needs {span}x{cols}x{cols}");
        if (!tokens.IsEmpty && tokens.Length != e) throw new ArgumentException($"GptqBatch: {tokens.Length} token counts for {e} experts");

        var pos = experts.ToArray();
        var ts = new long[e];
        for (int x = 0; x < e; x++) ts[x] = tokens.IsEmpty ? -1 : tokens[x];
        int threads = Threads.Resolve(options.Threads);
        int parallelExperts = Math.Min(e, threads);
        int threadsPerExpert = Math.Max(1, threads / Math.Max(1, parallelExperts));
        var results = new QuantizedWeight[e];
        fixed (float* pw = w, ph = h)
        {
            nint bw = (nint)pw, bh = (nint)ph; // the spans stay pinned while the workers read them
            Threads.For(e, parallelExperts, x =>
            {
                var wx = new ReadOnlySpan<float>((float*)bw + pos[x] * wSize, (int)wSize);
                var hx = new ReadOnlySpan<float>((float*)bh + pos[x] * hSize, (int)hSize);
                try
                {
                    results[x] = Gptq.Run(wx, rows, cols, hx, ts[x], options, threadsPerExpert);
                }
                catch (QmoeException ex)
                {
                    throw new QmoeException($"{names[x]}: {ex.Message}", ex);
                }
                expertDone?.Invoke();
            });
        }
        var fallbacks = new List<GptqFallback>();
        for (int x = 0; x < e; x++)
            if (results[x].Fallback is { } reason) fallbacks.Add(new GptqFallback(names[x], reason));
        return new GptqBatchResult(results, fallbacks);
    }
}
