using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.Runtime;
using Qmoe.Server;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench serve --model M [--clients 16] [--requests 8] [--max-tokens 32] [--max-batch 16]</c>: a load test of
/// <c>qmoe serve</c> on loopback. Every request (greedy completions of distinct lines of data/calibration.txt) first
/// runs alone, one at a time (its sequential twin, and the baseline tokens/s); then the clients run concurrently,
/// each sending its requests one after another. Reports errors, outputs differing from their twins, p50/p99 latency,
/// aggregate tokens/s against the sequential baseline, mean batch occupancy and peak RSS.
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
        var json = CommonOptions.Json();
        var cmd = new Command("serve", "load test of the HTTP server: concurrent clients vs one request at a time") { model, clients, requests, maxTokens, maxBatch, threads, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            int c = p.GetValue(clients), r = p.GetValue(requests), n = p.GetValue(maxTokens);
            if (c is < 1 or > 256 || r is < 1 or > 1000 || n is < 1 or > 4096)
                throw new QmoeException("--clients must be in [1, 256], --requests in [1, 1000], --max-tokens in [1, 4096]");
            return Run(p.GetValue(model)!, c, r, n, p.GetValue(maxBatch), human).GetAwaiter().GetResult();
        }));
        return cmd;
    }

    private sealed record Outcome(string Text, int Tokens, double Seconds, string? Error);

    private static async Task<JsonObject> Run(string dir, int clients, int perClient, int maxTokens, int maxBatch, TextWriter human)
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

        human.WriteLine($"{prompts.Length} requests of up to {maxTokens} tokens on {server.BaseAddress}: one at a time first...");
        var seqGc = GcActivity.Start();
        var seqClock = Stopwatch.StartNew();
        var twins = new Outcome[prompts.Length];
        for (int i = 0; i < prompts.Length; i++) twins[i] = await Complete(prompts[i]);
        double seqSeconds = seqClock.Elapsed.TotalSeconds;
        seqGc = seqGc.Stop();
        long stepsBefore = served.Scheduler.Steps, slotsBefore = served.Scheduler.StepSlots;

        human.WriteLine($"then {clients} concurrent clients x {perClient} requests...");
        var results = new Outcome[prompts.Length];
        var conGc = GcActivity.Start();
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
        conGc = conGc.Stop();
        long steps = served.Scheduler.Steps - stepsBefore, slots = served.Scheduler.StepSlots - slotsBefore;

        int errors = results.Count(o => o.Error != null) + twins.Count(o => o.Error != null);
        int mismatches = results.Zip(twins).Count(p => p.First.Error == null && p.Second.Error == null && p.First.Text != p.Second.Text);
        var lat = results.Where(o => o.Error == null).Select(o => o.Seconds).Order().ToArray();
        double P(double q) => lat.Length == 0 ? double.NaN : lat[Math.Min(lat.Length - 1, (int)Math.Ceiling(q * lat.Length) - 1)];
        var seqLat = twins.Where(o => o.Error == null).Select(o => o.Seconds).Order().ToArray();
        double seqTps = twins.Sum(o => o.Tokens) / seqSeconds, conTps = results.Sum(o => o.Tokens) / conSeconds;
        double occupancy = steps == 0 ? 0 : slots / (double)steps;
        long rss = CompressionPipeline.PeakRss();
        string load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
        human.WriteLine($"errors {errors}, outputs differing from their sequential twin {mismatches} (of {prompts.Length})");
        double SeqP(double q) => seqLat.Length == 0 ? double.NaN : seqLat[Math.Min(seqLat.Length - 1, (int)Math.Ceiling(q * seqLat.Length) - 1)];
        int tokens = results.Sum(o => o.Tokens);
        human.WriteLine($"latency p50 {P(0.5):F3} s, p99 {P(0.99):F3} s (one at a time: p50 {SeqP(0.5):F3} s, p99 {SeqP(0.99):F3} s)");
        human.WriteLine($"{tokens} tokens in {conSeconds:F1} s concurrently, {twins.Sum(o => o.Tokens)} in {seqSeconds:F1} s one at a time");
        human.WriteLine($"tokens/s: concurrent {conTps:F1} vs one at a time {seqTps:F1} = {conTps / seqTps:F2}x; mean batch {occupancy:F2} of {maxBatch}; peak RSS {rss >> 20} MiB; load {load}");
        human.WriteLine($"GC one at a time: {seqGc.Describe(seqSeconds)}; concurrently: {conGc.Describe(conSeconds)}");
        if (errors > 0) human.WriteLine("first error: " + results.Concat(twins).First(o => o.Error != null).Error);
        return new JsonObject
        {
            ["requests"] = prompts.Length, ["clients"] = clients, ["max_tokens"] = maxTokens, ["max_batch"] = maxBatch,
            ["errors"] = errors, ["mismatches"] = mismatches,
            ["latency_p50_s"] = P(0.5), ["latency_p99_s"] = P(0.99),
            ["sequential_latency_p50_s"] = SeqP(0.5), ["sequential_latency_p99_s"] = SeqP(0.99),
            ["tokens"] = tokens, ["concurrent_seconds"] = conSeconds, ["sequential_seconds"] = seqSeconds,
            ["sequential_tokens_per_s"] = seqTps, ["concurrent_tokens_per_s"] = conTps, ["speedup"] = conTps / seqTps,
            ["mean_batch"] = occupancy, ["peak_rss_bytes"] = rss, ["loadavg"] = load,
            ["sequential_gc"] = seqGc.ToJson(seqSeconds), ["concurrent_gc"] = conGc.ToJson(conSeconds),
        };
    }

    /// <summary>The garbage collector's work over a phase of the load test: collections per generation, bytes
    /// allocated and time paused (the server allocates per decode step; on a machine that reports no cache sizes
    /// .NET's gen0 budget is small, so this shows what collections cost).</summary>
    private readonly record struct GcActivity(int Gen0, int Gen1, int Gen2, long Allocated, TimeSpan Paused)
    {
        public static GcActivity Start() => new(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
            GC.GetTotalAllocatedBytes(), GC.GetTotalPauseDuration());

        /// <summary>The activity since <see cref="Start"/>.</summary>
        public GcActivity Stop()
        {
            var now = Start();
            return new(now.Gen0 - Gen0, now.Gen1 - Gen1, now.Gen2 - Gen2, now.Allocated - Allocated, now.Paused - Paused);
        }

        public string Describe(double seconds) =>
            $"{Gen0}/{Gen1}/{Gen2} collections (gen0/1/2), {Allocated >> 20} MiB allocated, paused {Paused.TotalSeconds / seconds:P1} of the time";

        public JsonObject ToJson(double seconds) => new()
        {
            ["gen0"] = Gen0, ["gen1"] = Gen1, ["gen2"] = Gen2, ["allocated_bytes"] = Allocated, ["paused_fraction"] = Paused.TotalSeconds / seconds,
        };
    }
}
