using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.IO;
using Qmoe.Numerics;
using Qmoe.Quantization;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench gptq</c>: peak FMA rate, GEMM GFLOP/s, Cholesky time, ternary GPTQ on switch-base expert shapes
/// (1 thread and all cores), batched vs single GPTQ, Hessian accumulation precision and GPTQ/RTN objective ratios.
/// Every time is the best of several runs after a warm-up.
/// </summary>
internal static class BenchGptq
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "one JSON object on stdout" };
        var quick = new Option<bool>("--quick") { Description = "shapes 4x smaller, one repetition (a smoke run)" };
        var inputs = new Option<FileInfo?>("--hessian-inputs")
        {
            Description = "safetensors with X [tokens, cols], wi [ff, cols], wo [cols, ff] of one expert (e.g. the fixtures' hessian_inputs.safetensors): adds GPTQ/RTN ratios on real inputs",
        };
        var cmd = new Command("gptq", "GPTQ, GEMM and Cholesky timings on expert shapes") { json, quick, inputs };
        cmd.SetAction(r => CliRunner.Run(r.GetValue(json), human => Run(human, r.GetValue(quick), r.GetValue(inputs)?.FullName)));
        return cmd;
    }

    private static JsonObject Run(TextWriter human, bool quick, string? inputsPath)
    {
        if (inputsPath != null && !File.Exists(inputsPath)) throw new QmoeException($"{inputsPath}: file not found");
        int cores = Environment.ProcessorCount, div = quick ? 4 : 1, reps = quick ? 1 : 3;
        int[] threadCounts = cores > 1 ? [1, cores] : [1];
        var result = new JsonObject();

        var peak = new JsonObject();
        foreach (int t in threadCounts) peak[t.ToString()] = Math.Round(PeakFma.Measure(t), 1);
        result["machine"] = new JsonObject { ["cores"] = cores, ["vector_bits"] = GemmKernel.Width, ["peak_fma_gflops"] = peak };
        human.WriteLine($"peak FMA: {peak.ToJsonString()} GFLOP/s (vector {GemmKernel.Width} bits)");

        var gemm = new JsonArray();
        int n = 2048 / div;
        var rng = new Random(1);
        var a = Random(rng, n * n); var b = Random(rng, n * n); var c = new float[n * n];
        foreach (int t in threadCounts)
        {
            double s = Time(() => Gemm.Multiply(false, false, n, n, n, 1f, a, n, b, n, 0f, c, n, t), reps);
            double gflops = 2.0 * n * n * n / s / 1e9;
            gemm.Add(new JsonObject { ["n"] = n, ["threads"] = t, ["gflops"] = Math.Round(gflops, 1), ["fraction_of_peak"] = Math.Round(gflops / (double)peak[t.ToString()]!, 3) });
            human.WriteLine($"GEMM {n}^3, {t} thread(s): {gflops:F1} GFLOP/s");
        }
        result["gemm"] = gemm;

        var chol = new JsonArray();
        foreach (int dim in new[] { 768 / div, 3072 / div })
        {
            var layer = SyntheticLayer.Create(1, dim, Math.Min(2 * dim, 4096), dim);
            for (int i = 0; i < dim; i++) layer.H[i * dim + i] += 0.01f;
            foreach (int t in threadCounts)
            {
                var work = new float[dim * dim];
                double f = Time(() => { layer.H.CopyTo(work, 0); Cholesky.TryFactor(work, dim, t); }, reps);
                double u = Time(() => Cholesky.TryInverseUpperFactor(layer.H, dim, work, t), reps);
                chol.Add(new JsonObject { ["n"] = dim, ["threads"] = t, ["factor_ms"] = Math.Round(f * 1e3, 2), ["inverse_upper_factor_ms"] = Math.Round(u * 1e3, 2) });
                human.WriteLine($"Cholesky {dim}, {t} thread(s): factor {f * 1e3:F1} ms, Hinv (chol + tri-inverse) {u * 1e3:F1} ms");
            }
        }
        result["cholesky"] = chol;

        var gptq = new JsonArray();
        foreach (var (rows, cols) in new[] { (3072 / div, 768 / div), (768 / div, 3072 / div) })
        {
            var layer = SyntheticLayer.Create(rows, cols, Math.Min(2 * cols, 4096), rows + cols);
            foreach (int t in threadCounts)
            {
                var opts = new GptqOptions { Type = QuantType.Ternary, Threads = t };
                double s = Time(() => Gptq.Quantize(layer.W, rows, cols, layer.H, opts), reps);
                gptq.Add(new JsonObject { ["bits"] = "ternary", ["rows"] = rows, ["cols"] = cols, ["threads"] = t, ["seconds"] = Math.Round(s, 4) });
                human.WriteLine($"ternary GPTQ W {rows}x{cols}, H {cols}^2, {t} thread(s): {s:F3} s");
            }
        }
        result["gptq"] = gptq;

        result["batched"] = Batched(human, 3072 / div, 768 / div, cores, quick ? 1 : 2);
        result["hessian_precision"] = HessianPrecision(human, quick ? 16384 : 131072, 128);

        var quality = new JsonArray();
        var synth = SyntheticLayer.Create(512, 256, 2048, 7);
        Quality(human, quality, "random_correlated", synth.W, synth.Rows, synth.Cols, synth.H, synth.Tokens);
        if (inputsPath != null) RealQuality(human, quality, inputsPath);
        result["objective_gptq_over_rtn"] = quality;
        return result;
    }

    private static JsonObject Batched(TextWriter human, int rows, int cols, int threads, int reps)
    {
        const int E = 16;
        var layers = Enumerable.Range(0, E).Select(e => SyntheticLayer.Create(rows, cols, 2 * cols, 100 + e)).ToArray();
        var w = layers.SelectMany(l => l.W).ToArray();
        var h = layers.SelectMany(l => l.H).ToArray();
        var names = Enumerable.Range(0, E).Select(e => $"expert_{e}").ToArray();
        var opts = new GptqOptions { Type = QuantType.Ternary, Threads = threads };
        double batched = Time(() => GptqBatch.Quantize(w, h, rows, cols, names, [], opts), reps);
        double single = Time(() => { foreach (var l in layers) Gptq.Quantize(l.W, rows, cols, l.H, opts); }, reps);
        human.WriteLine($"16 experts W {rows}x{cols}, {threads} threads: batched {batched:F2} s, 16 single runs {single:F2} s ({single / batched:F2}x)");
        return new JsonObject
        {
            ["experts"] = E, ["rows"] = rows, ["cols"] = cols, ["threads"] = threads,
            ["batched_s"] = Math.Round(batched, 3), ["single_runs_s"] = Math.Round(single, 3), ["speedup"] = Math.Round(single / batched, 3),
        };
    }

    // Relative Frobenius error against a double-precision XᵀX of (a) one f32 GEMM over all tokens, (b) HessianAccumulator.
    private static JsonObject HessianPrecision(TextWriter human, int tokens, int cols)
    {
        var x = SyntheticLayer.Create(1, cols, tokens, 3).X;
        var exact = new double[cols * cols];
        for (int t = 0; t < tokens; t++)
            for (int i = 0; i < cols; i++)
            {
                double xi = x[t * cols + i];
                for (int j = 0; j <= i; j++) exact[i * cols + j] += xi * x[t * cols + j];
            }
        var f32 = new float[cols * cols];
        Gemm.Multiply(true, false, cols, cols, tokens, 2f / tokens, x, cols, x, cols, 0f, f32, cols);
        var acc = new HessianAccumulator(cols);
        acc.Add(x, tokens);
        var hybrid = acc.ToHessian();
        double num32 = 0, numHy = 0, den = 0;
        for (int i = 0; i < cols; i++)
            for (int j = 0; j <= i; j++)
            {
                double e = exact[i * cols + j] * 2.0 / tokens;
                num32 += Math.Pow(f32[i * cols + j] - e, 2);
                numHy += Math.Pow(hybrid[i * cols + j] - e, 2);
                den += e * e;
            }
        double r32 = Math.Sqrt(num32 / den), rHy = Math.Sqrt(numHy / den);
        human.WriteLine($"H from {tokens} tokens x {cols}: relative error f32 GEMM {r32:E2}, f32 chunks + f64 sum {rHy:E2}");
        return new JsonObject { ["tokens"] = tokens, ["cols"] = cols, ["f32_rel_error"] = r32, ["chunked_f64_rel_error"] = rHy };
    }

    private static void RealQuality(TextWriter human, JsonArray quality, string path)
    {
        using var f = SafeTensorsFile.Open(path);
        foreach (var name in new[] { "X", "wi", "wo" })
            if (!f.Contains(name)) throw new QmoeException($"{path}: tensor '{name}' missing");
        var x = f.ReadFloat32("X");
        var wi = f.ReadFloat32("wi");
        var wo = f.ReadFloat32("wo");
        int tokens = (int)f.Info("X").Shape[0], d = (int)f.Info("X").Shape[1], ff = (int)f.Info("wi").Shape[0];
        if (f.Info("wi").Shape[1] != d || f.Info("wo").Shape[0] != d || f.Info("wo").Shape[1] != ff)
            throw new QmoeException($"{path}: shapes of X, wi, wo do not form an expert");
        var hi = new HessianAccumulator(d); hi.Add(x, tokens);
        Quality(human, quality, "real_wi", wi, ff, d, hi.ToHessian(), tokens);
        // wo's inputs: relu(X · wiᵀ) (the expert is wo(relu(wi x))).
        var hidden = new float[tokens * ff];
        MatMul.XWt(x, wi, hidden, tokens, ff, d);
        for (int i = 0; i < hidden.Length; i++) hidden[i] = Math.Max(hidden[i], 0f);
        var ho = new HessianAccumulator(ff); ho.Add(hidden, tokens);
        Quality(human, quality, "real_wo", wo, d, ff, ho.ToHessian(), tokens);
    }

    private static void Quality(TextWriter human, JsonArray quality, string source, float[] w, int rows, int cols, float[] h, int tokens)
    {
        var row = new JsonObject { ["source"] = source, ["rows"] = rows, ["cols"] = cols, ["tokens"] = tokens };
        foreach (var info in QuantTypeInfo.All)
        {
            var rtn = Rtn.Quantize(info.Type, w, rows, cols);
            var g = Gptq.Quantize(w, rows, cols, h, new GptqOptions { Type = info.Type }, tokens);
            double ratio = LayerError.Compute(w, g.Dequantized, rows, cols, h) / LayerError.Compute(w, rtn.Dequantized, rows, cols, h);
            row[info.Name] = Math.Round(ratio, 4);
        }
        human.WriteLine($"objective GPTQ/RTN on {source} ({rows}x{cols}, {tokens} tokens): {row.ToJsonString()}");
        quality.Add(row);
    }

    private static double Time(Action action, int reps)
    {
        action();
        double best = double.MaxValue;
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    private static float[] Random(Random rng, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }
}
