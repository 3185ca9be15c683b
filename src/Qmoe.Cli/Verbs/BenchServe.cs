using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Kernels;
using Qmoe.Runtime;
using Qmoe.Server;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench serve --model M [--clients 16] [--requests 8] [--max-tokens 32] [--max-batch 16] [--rounds 3]</c>: a load
/// test of <c>qmoe serve</c> on loopback. After untimed warm-up rounds (until the JIT is done), each round runs every request (greedy completions of
/// distinct lines of data/calibration.txt) alone, one at a time (its sequential twin, and the baseline tokens/s), then
/// from the concurrent clients, each sending its requests one after another. Reports errors and outputs differing from
/// their twins over all rounds; p50/p99 latency, aggregate tokens/s against the sequential baseline, mean batch
/// occupancy and CPU and GC cost for the round with the median ratio; every round's ratio; peak RSS.
/// </summary>
internal static class BenchServe
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var clients = new Option<int>("--clients") { Description = "concurrent clients", DefaultValueFactory = _ => 16 };
        var requests = new Option<int>("--requests") { Description = "requests per client", DefaultValueFactory = _ => 8 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "max_tokens per request", DefaultValueFactory = _ => 32 };
        var maxBatch = new Option<int>("--max-batch") { Description = "the server's --max-batch", DefaultValueFactory = _ => 16 };
        var threads = CommonOptions.Threads();
        var rounds = new Option<int>("--rounds") { Description = "rounds of both phases; the median round is reported", DefaultValueFactory = _ => 3 };
        var json = CommonOptions.Json();
        var cmd = new Command("serve", "load test of the HTTP server: concurrent clients vs one request at a time") { model, clients, requests, maxTokens, maxBatch, rounds, threads, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            int c = p.GetValue(clients), r = p.GetValue(requests), n = p.GetValue(maxTokens), k = p.GetValue(rounds);
            if (c is < 1 or > 256 || r is < 1 or > 1000 || n is < 1 or > 4096 || k is < 1 or > 100)
                throw new QmoeException("--clients must be in [1, 256], --requests in [1, 1000], --max-tokens in [1, 4096], --rounds in [1, 100]");
            return Run(p.GetValue(model)!, c, r, n, p.GetValue(maxBatch), k, human).GetAwaiter().GetResult();
        }));
        return cmd;
    }

    private sealed record Outcome(string Text, int Tokens, double Seconds, string? Error);

    private static async Task<JsonObject> Run(string dir, int clients, int perClient, int maxTokens, int maxBatch, int rounds, TextWriter human)
    {
        var lines = File.ReadLines(Path.Combine(RepoPaths.Root, "data", "calibration.txt")).Where(l => l.Length > 20).ToArray();
        var prompts = Enumerable.Range(0, clients * perClient).Select(i => string.Join(' ', lines[i % lines.Length].Split(' ').Take(12))).ToArray();
        var runnable = ModelLoader.Open(dir);
        var served = new ServedModel(runnable, dir, maxBatch);
        await using var server = await QmoeServer.StartAsync(served, new ServerOptions { Host = "127.0.0.1", Port = 0, MaxBatch = maxBatch, MaxQueue = clients * perClient + 1 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(30) };

        async Task<Outcome> Complete(string prompt)
        {
            var sw = Stopwatch.StartNew();
            try
            {
                using var resp = await http.PostAsJsonAsync("/v1/completions", new { prompt, max_tokens = maxTokens, temperature = 0 });
                var body = JsonNode.Parse(await resp.Content.ReadAsStringAsync())!;
                if (!resp.IsSuccessStatusCode) return new Outcome("", 0, sw.Elapsed.TotalSeconds, body["error"]?["message"]?.GetValue<string>() ?? resp.StatusCode.ToString());
                return new Outcome(body["choices"]![0]!["text"]!.GetValue<string>(), body["usage"]!["completion_tokens"]!.GetValue<int>(), sw.Elapsed.TotalSeconds, null);
            }
            catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException or NullReferenceException)
            {
                return new Outcome("", 0, sw.Elapsed.TotalSeconds, e.Message);
            }
        }

        async Task<Round> RunRound()
        {
            var seqCost = PhaseCost.Start();
            var seqClock = Stopwatch.StartNew();
            var twins = new Outcome[prompts.Length];
            for (int i = 0; i < prompts.Length; i++) twins[i] = await Complete(prompts[i]);
            double seqSeconds = seqClock.Elapsed.TotalSeconds;
            seqCost = seqCost.Stop();
            long stepsBefore = served.Scheduler.Steps, slotsBefore = served.Scheduler.StepSlots;

            var results = new Outcome[prompts.Length];
            var conCost = PhaseCost.Start();
            var conClock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, clients).Select(client => Task.Run(async () =>
            {
                for (int k = 0; k < perClient; k++)
                {
                    int i = client * perClient + k;
                    results[i] = await Complete(prompts[i]);
                }
            })));
            double conSeconds = conClock.Elapsed.TotalSeconds;
            conCost = conCost.Stop();
            long steps = served.Scheduler.Steps - stepsBefore, slots = served.Scheduler.StepSlots - slotsBefore;
            return new Round(twins, results, seqSeconds, conSeconds, steps == 0 ? 0 : slots / (double)steps, seqCost, conCost);
        }

        // Each phase lasts about a second on the tiny fixtures, so one round's ratio moves with whatever else the
        // machine does: the rounds' median is reported, with every round's ratio beside it.
        // Warm-up, untimed: whole rounds of both phases until one spends under 1% of its time in the JIT (at most
        // MaxWarmUpRounds). With one warm-up round (or a shorter one) the tiered JIT was still compiling in the timed
        // rounds, in either phase: the background compiler took 23% of the CPU of a second round's concurrent phase
        // (perf, qwen3-moe-tiny, 30 Nov 2026), and earlier 3.5-4.9x ratios came from a still-compiling one-at-a-time phase.
        human.WriteLine($"warm-up: untimed rounds ({prompts.Length} requests one at a time, then {clients} concurrent clients) until the JIT is done...");
        for (int w = 1; ; w++)
        {
            var r = await RunRound();
            double jit = (r.SeqCost.Jit + r.ConCost.Jit).TotalSeconds, wall = r.SeqSeconds + r.ConSeconds;
            human.WriteLine($"  warm-up round {w}: {wall:F1} s, JIT {jit * 1000:F0} ms ({r.SeqCost.JitMethods + r.ConCost.JitMethods} methods compiled)");
            if (jit < 0.01 * wall || w == MaxWarmUpRounds) break;
        }
        var all = new List<Round>();
        for (int k = 0; k < rounds; k++)
        {
            human.WriteLine($"round {k + 1} of {rounds}: {prompts.Length} requests of up to {maxTokens} tokens on {server.BaseAddress}, one at a time, then {clients} concurrent clients x {perClient} requests...");
            all.Add(await RunRound());
            human.WriteLine($"  {all[^1].Speedup:F2}x");
        }
        var m = all.OrderBy(r => r.Speedup).ElementAt((all.Count - 1) / 2);
        int errors = all.Sum(r => r.Results.Count(o => o.Error != null) + r.Twins.Count(o => o.Error != null));
        int mismatches = all.Sum(r => r.Results.Zip(r.Twins).Count(p => p.First.Error == null && p.Second.Error == null && p.First.Text != p.Second.Text));
        var lat = m.Results.Where(o => o.Error == null).Select(o => o.Seconds).Order().ToArray();
        var seqLat = m.Twins.Where(o => o.Error == null).Select(o => o.Seconds).Order().ToArray();
        static double P(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        long rss = CompressionPipeline.PeakRss();
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
        int tokens = m.Results.Sum(o => o.Tokens);
        human.WriteLine($"errors {errors}, outputs differing from their sequential twin {mismatches} (of {prompts.Length} x {rounds} rounds)");
        human.WriteLine($"median round: latency p50 {P(lat, 0.5):F3} s, p99 {P(lat, 0.99):F3} s (one at a time: p50 {P(seqLat, 0.5):F3} s, p99 {P(seqLat, 0.99):F3} s)");
        human.WriteLine($"{tokens} tokens in {m.ConSeconds:F1} s concurrently, {m.Twins.Sum(o => o.Tokens)} in {m.SeqSeconds:F1} s one at a time");
        human.WriteLine($"tokens/s: concurrent {m.ConTps:F1} vs one at a time {m.SeqTps:F1} = {m.Speedup:F2}x (median of {string.Join(", ", all.Select(r => $"{r.Speedup:F2}x"))}); mean batch {m.Occupancy:F2} of {served.Scheduler.StepCapacity} per step ({served.Scheduler.Lanes} lanes); peak RSS {rss >> 20} MiB; load {load}");
        human.WriteLine($"CPU kernels: {KernelIsas.Name(KernelIsas.Best)} (ratios depend on the instruction set)");
        human.WriteLine($"one at a time: {m.SeqCost.Describe(m.SeqSeconds)}");
        human.WriteLine($"concurrently: {m.ConCost.Describe(m.ConSeconds)}");
        if (errors > 0) human.WriteLine("first error: " + all.SelectMany(r => r.Results.Concat(r.Twins)).First(o => o.Error != null).Error);
        return new JsonObject
        {
            ["isa"] = KernelIsas.Name(KernelIsas.Best),
            ["requests"] = prompts.Length, ["clients"] = clients, ["max_tokens"] = maxTokens, ["max_batch"] = maxBatch,
            ["errors"] = errors, ["mismatches"] = mismatches,
            ["latency_p50_s"] = P(lat, 0.5), ["latency_p99_s"] = P(lat, 0.99),
            ["sequential_latency_p50_s"] = P(seqLat, 0.5), ["sequential_latency_p99_s"] = P(seqLat, 0.99),
            ["tokens"] = tokens, ["concurrent_seconds"] = m.ConSeconds, ["sequential_seconds"] = m.SeqSeconds,
            ["sequential_tokens_per_s"] = m.SeqTps, ["concurrent_tokens_per_s"] = m.ConTps, ["speedup"] = m.Speedup,
            ["round_speedups"] = new JsonArray(all.Select(r => (JsonNode)r.Speedup).ToArray()),
            ["mean_batch"] = m.Occupancy, ["step_capacity"] = served.Scheduler.StepCapacity, ["lanes"] = served.Scheduler.Lanes, ["peak_rss_bytes"] = rss, ["loadavg"] = load,
            ["sequential_cost"] = m.SeqCost.ToJson(m.SeqSeconds), ["concurrent_cost"] = m.ConCost.ToJson(m.ConSeconds),
        };
    }

    private const int MaxWarmUpRounds = 6;

    /// <summary>One round: every request one at a time (the twins), then all of them from concurrent clients.</summary>
    private sealed record Round(Outcome[] Twins, Outcome[] Results, double SeqSeconds, double ConSeconds, double Occupancy, PhaseCost SeqCost, PhaseCost ConCost)
    {
        public double SeqTps => Twins.Sum(o => o.Tokens) / SeqSeconds;
        public double ConTps => Results.Sum(o => o.Tokens) / ConSeconds;
        public double Speedup => ConTps / SeqTps;
    }

    /// <summary>What a phase of the load test cost the process: CPU time (cores busy on average), the garbage
    /// collector's work, collections per generation, bytes allocated and time paused (on a machine that reports no
    /// cache sizes .NET's gen0 budget is small, so this shows what the server's allocations cost), and the JIT's
    /// (time in it on every thread, methods compiled).</summary>
    private readonly record struct PhaseCost(TimeSpan Cpu, int Gen0, int Gen1, int Gen2, long Allocated, TimeSpan Paused, TimeSpan Jit, long JitMethods)
    {
        public static PhaseCost Start() => new(Process.GetCurrentProcess().TotalProcessorTime, GC.CollectionCount(0),
            GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalAllocatedBytes(), GC.GetTotalPauseDuration(),
            System.Runtime.JitInfo.GetCompilationTime(), System.Runtime.JitInfo.GetCompiledMethodCount());

        /// <summary>The cost since <see cref="Start"/>.</summary>
        public PhaseCost Stop()
        {
            var now = Start();
            return new(now.Cpu - Cpu, now.Gen0 - Gen0, now.Gen1 - Gen1, now.Gen2 - Gen2, now.Allocated - Allocated, now.Paused - Paused,
                now.Jit - Jit, now.JitMethods - JitMethods);
        }

        public string Describe(double seconds) =>
            $"{Cpu.TotalSeconds / seconds:F2} cores busy; GC {Gen0}/{Gen1}/{Gen2} collections (gen0/1/2), {Allocated >> 20} MiB allocated, paused {Paused.TotalSeconds / seconds:P1} of the time; JIT {Jit.TotalMilliseconds:F0} ms ({JitMethods} methods)";

        public JsonObject ToJson(double seconds) => new()
        {
            ["cores_busy"] = Cpu.TotalSeconds / seconds,
            ["gen0"] = Gen0, ["gen1"] = Gen1, ["gen2"] = Gen2, ["allocated_bytes"] = Allocated, ["paused_fraction"] = Paused.TotalSeconds / seconds,
            ["jit_seconds"] = Jit.TotalSeconds, ["jit_methods"] = JitMethods,
        };
    }
}
