using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Kernels;
using Qmoe.Runtime;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench e2e --model COMPRESSED --dense M [--rounds N] [--json]</c>: end-to-end throughput of a compressed model
/// against its dense original, for batch-1 generation (64 new tokens with the KV cache; the headline <c>ratio</c>)
/// and for eval. Generation is fed real validation text (encoder input = a validation example, decoder tokens =
/// a raw validation block) instead of its own argmax: identical work per token, but routing varies from step to
/// step as in real use — a random synthetic model's greedy output repeats one token, which keeps one expert's
/// dense weights in cache and flatters dense. Each measurement runs in its own child process (the hidden <c>e2e-worker</c>), so
/// its peak RSS is that model's alone; it warms up until the JIT is done and keeps the fastest of three generations;
/// dense and compressed alternate and the best of the rounds is kept, which damps the noise of a shared machine.
/// </summary>
internal static class BenchE2e
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "compressed model directory", Required = true };
        var dense = new Option<string>("--dense") { Description = "its dense original", Required = true };
        var rounds = new Option<int>("--rounds") { Description = "alternating rounds (best kept)", DefaultValueFactory = _ => 2 };
        var newTokens = new Option<int>("--new-tokens") { Description = "generated tokens per run", DefaultValueFactory = _ => 64 };
        var evalExamples = new Option<int>("--eval-examples") { Description = "validation examples for the eval measurement", DefaultValueFactory = _ => 16 };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("e2e", "generation and eval throughput, compressed vs dense (separate processes)") { model, dense, rounds, newTokens, evalExamples, threads, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            int r = p.GetValue(rounds);
            if (r < 1) throw new QmoeException($"--rounds {r} must be ≥ 1");
            string[] common = ["--new-tokens", p.GetValue(newTokens).ToString(), "--eval-examples", p.GetValue(evalExamples).ToString(), "--threads", p.GetValue(threads).ToString()];
            var best = new Dictionary<string, (double Gen, double Eval, long Rss)>();
            for (int i = 0; i < r; i++)
                foreach (var (name, dir) in new[] { ("dense", p.GetValue(dense)!), ("compressed", p.GetValue(model)!) })
                {
                    var w = RunWorker(dir, common);
                    human.WriteLine($"round {i + 1} {name}: generation {w.Gen:F2} tokens/s, eval {w.Eval:F0} tokens/s, peak RSS {w.Rss >> 20} MiB");
                    best[name] = best.TryGetValue(name, out var b) ? (Math.Max(b.Gen, w.Gen), Math.Max(b.Eval, w.Eval), Math.Max(b.Rss, w.Rss)) : w;
                }
            var d = best["dense"]; var c = best["compressed"];
            human.WriteLine($"generation: compressed/dense = {c.Gen / d.Gen:F3}; eval: {c.Eval / d.Eval:F3}; peak RSS {c.Rss >> 20} vs {d.Rss >> 20} MiB");
            human.WriteLine($"CPU kernels: {KernelIsas.Name(KernelIsas.Best)} (the workers inherit this process's DOTNET_Enable* settings)");
            return new JsonObject
            {
                ["isa"] = KernelIsas.Name(KernelIsas.Best),
                ["dense_tokens_per_s"] = d.Gen, ["compressed_tokens_per_s"] = c.Gen, ["ratio"] = c.Gen / d.Gen,
                ["dense_rss_bytes"] = d.Rss, ["compressed_rss_bytes"] = c.Rss,
                ["eval"] = new JsonObject
                {
                    ["dense_tokens_per_s"] = d.Eval, ["compressed_tokens_per_s"] = c.Eval, ["ratio"] = c.Eval / d.Eval,
                },
            };
        }));
        return cmd;
    }

    private static (double Gen, double Eval, long Rss) RunWorker(string dir, string[] args)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
        // Under `dotnet Qmoe.Cli.dll` the process is dotnet itself: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") psi.ArgumentList.Add(typeof(BenchE2e).Assembly.Location);
        foreach (var a in new[] { "bench", "e2e-worker", "--model", dir }.Concat(args)) psi.ArgumentList.Add(a);
        using var proc = Process.Start(psi)!;
        var err = proc.StandardError.ReadToEndAsync();
        string output = proc.StandardOutput.ReadToEnd();
        proc.WaitForExit();
        if (proc.ExitCode != 0) throw new QmoeException($"{dir}: benchmark worker failed: {err.Result.Trim().Split('\n')[^1]}");
        var j = JsonNode.Parse(output)!;
        return ((double)j["generation_tokens_per_s"]!, (double)j["eval_tokens_per_s"]!, (long)j["peak_rss_bytes"]!);
    }

    /// <summary>The measuring child: loads one model, warms up, times generation and eval, reports its own peak RSS.</summary>
    public static Command CreateWorker()
    {
        var model = new Option<string>("--model") { Required = true };
        var newTokens = new Option<int>("--new-tokens") { DefaultValueFactory = _ => 64 };
        var evalExamples = new Option<int>("--eval-examples") { DefaultValueFactory = _ => 16 };
        var threads = CommonOptions.Threads();
        var cmd = new Command("e2e-worker") { Hidden = true };
        cmd.Options.Add(model); cmd.Options.Add(newTokens); cmd.Options.Add(evalExamples); cmd.Options.Add(threads);
        cmd.SetAction(p => CliRunner.Run(true, human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            using var m = ModelLoader.Open(p.GetValue(model)!);
            // Prompt: a validation example's encoder input (Switch) or the first 16 tokens of a raw block (decoder-only);
            // fed tokens: the rest of a raw validation block.
            var raw = EvalSet.Load(RepoPaths.EvalSets, "validation", m.VocabSize, 2, causal: true).RawBlocks!;
            var prompts = m.IsDecoderOnly ? raw.Select(r => r[..16]).ToArray()
                : EvalSet.Load(RepoPaths.EvalSets, "validation", m.VocabSize, 2).InputIds!;
            int n = p.GetValue(newTokens);
            // Warm-up, untimed, until the JIT is done: the tiered JIT promotes a method after ~30 calls and a delay, so a
            // 4-token warm-up left much of the timed generation in tier-0 code (the compressed path, with more managed
            // code per expert call, more so). Generations as long as the timed one, until one compiles for < 1% of its time.
            for (int w = 0; w < 8; w++)
            {
                var jit = System.Runtime.JitInfo.GetCompilationTime();
                var warm = Stopwatch.StartNew();
                m.Generate(prompts[1], n, stopAtEos: false, forced: raw[1][16..]);
                if ((System.Runtime.JitInfo.GetCompilationTime() - jit).TotalSeconds < 0.01 * warm.Elapsed.TotalSeconds) break;
            }
            // The fastest of three timed generations: one lasts a fraction of a second, and on a shared machine single
            // runs of the same binary varied by up to 1.8x.
            double gen = 0;
            for (int t = 0; t < 3; t++)
            {
                var sw = Stopwatch.StartNew();
                m.Generate(prompts[0], n, stopAtEos: false, forced: raw[0][16..]);
                gen = Math.Max(gen, n / sw.Elapsed.TotalSeconds);
            }
            var set = EvalSet.Load(RepoPaths.EvalSets, "validation", m.VocabSize, p.GetValue(evalExamples), m.IsDecoderOnly);
            var ev = m.Evaluate(set);
            return new JsonObject
            {
                ["generation_tokens_per_s"] = gen, ["eval_tokens_per_s"] = ev.TokensPerSecond,
                ["peak_rss_bytes"] = Qmoe.Compression.CompressionPipeline.PeakRss(),
            };
        }));
        return cmd;
    }
}
