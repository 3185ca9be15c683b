namespace Qmoe.Quantization;

/// <summary>One expert that fell back from GPTQ to RTN.</summary>
/// <param name="Name">The caller's name for the expert (e.g. its tensor name).</param>
/// <param name="Reason">Why (no calibration tokens, Cholesky failure).</param>
public sealed record GptqFallback(string Name, string Reason);

/// <summary>Result of <see cref="GptqBatch.Quantize"/>.</summary>
/// <param name="Experts">Per expert, in input order.</param>
/// <param name="Fallbacks">The experts that were quantized by RTN instead, with names and reasons.</param>
public sealed record GptqBatchResult(IReadOnlyList<QuantizedWeight> Experts, IReadOnlyList<GptqFallback> Fallbacks);

/// <summary>
/// GPTQ over a group of experts of one layer: W [E, rows, cols], H [E, cols, cols]. On a CPU the batch dimension
/// is spread over threads (each expert on its own thread(s)), which keeps every core busy through GPTQ's
/// sequential column loop; since <see cref="Gptq"/> is bitwise independent of its thread count, the results are
/// identical to one-at-a-time runs. An expert without tokens or with a hopeless Hessian falls back to RTN and is
/// listed; only non-finite weights (a corrupt checkpoint) throw, as a <see cref="QmoeException"/> naming the expert.
/// </summary>
public static class GptqBatch
{
    /// <summary>
    /// Quantizes E = <paramref name="names"/>.Count experts. <paramref name="tokens"/>: calibration tokens per
    /// expert (empty = unknown; 0 forces the RTN fallback).
    /// </summary>
    public static GptqBatchResult Quantize(ReadOnlySpan<float> w, ReadOnlySpan<float> h, int rows, int cols,
        IReadOnlyList<string> names, ReadOnlySpan<long> tokens, GptqOptions options)
    {
        int e = names.Count;
        long wSize = (long)rows * cols, hSize = (long)cols * cols;
        if (rows <= 0 || cols <= 0 || e * wSize > w.Length) throw new ArgumentException($"GptqBatch: W has {w.Length} values, needs {e}x{rows}x{cols}");
        if (e * hSize > h.Length) throw new ArgumentException($"GptqBatch: H has {h.Length} values, needs {e}x{cols}x{cols}");
        if (!tokens.IsEmpty && tokens.Length != e) throw new ArgumentException($"GptqBatch: {tokens.Length} token counts for {e} experts");

        var ws = new float[e][];
        var hs = new float[e][];
        var ts = new long[e];
        for (int x = 0; x < e; x++)
        {
            ws[x] = w.Slice((int)(x * wSize), (int)wSize).ToArray();
            hs[x] = h.Slice((int)(x * hSize), (int)hSize).ToArray();
            ts[x] = tokens.IsEmpty ? -1 : tokens[x];
        }

        int threads = Threads.Resolve(options.Threads);
        int parallelExperts = Math.Min(e, threads);
        int threadsPerExpert = Math.Max(1, threads / Math.Max(1, parallelExperts));
        var results = new QuantizedWeight[e];
        Threads.For(e, parallelExperts, x =>
        {
            try
            {
                results[x] = Gptq.Run(ws[x], rows, cols, hs[x], ts[x], options, threadsPerExpert);
            }
            catch (QmoeException ex)
            {
                throw new QmoeException($"{names[x]}: {ex.Message}", ex);
            }
            ws[x] = hs[x] = null!; // release the copies early
        });
        var fallbacks = new List<GptqFallback>();
        for (int x = 0; x < e; x++)
            if (results[x].Fallback is { } reason) fallbacks.Add(new GptqFallback(names[x], reason));
        return new GptqBatchResult(results, fallbacks);
    }
}
