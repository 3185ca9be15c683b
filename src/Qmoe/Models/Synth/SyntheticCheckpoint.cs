using System.Text.Json.Nodes;
using Qmoe.IO;

namespace Qmoe.Models.Synth;

/// <summary>
/// Writes a random Hugging Face checkpoint with a real model's tensor names and shapes, for scale tests:
/// bf16, sharded (<c>model-0000k-of-0000n.safetensors</c> + <c>model.safetensors.index.json</c>), streamed tensor by
/// tensor (never the whole model in memory). Values are Gaussian with std 1/sqrt(fan_in) for projections (the
/// scale of trained T5/Switch linear weights), 1 for norms' gains, and per-tensor deterministic seeds, so the
/// same arguments always give the same bytes.
/// </summary>
public static class SyntheticCheckpoint
{
    /// <summary>One tensor to synthesize: name, shape, and the standard deviation (0 = constant 1, for norm gains).</summary>
    public sealed record Spec(string Name, long[] Shape, float Std);

    public static void Write(string outDir, JsonObject config, IReadOnlyList<Spec> tensors, long shardBytes, int seed,
        Action<string>? progress = null)
    {
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new QmoeException($"{outDir}: output directory exists and is not empty");
        Directory.CreateDirectory(outDir);
        // Greedy sharding in declaration order.
        var shards = new List<List<Spec>> { new() };
        long inShard = 0;
        foreach (var t in tensors)
        {
            long bytes = t.Shape.Aggregate(2L, (a, d) => a * d);
            if (inShard > 0 && inShard + bytes > shardBytes) { shards.Add(new()); inShard = 0; }
            shards[^1].Add(t);
            inShard += bytes;
        }
        var weightMap = new JsonObject();
        long total = 0;
        for (int s = 0; s < shards.Count; s++)
        {
            string file = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            progress?.Invoke($"writing {file} ({shards[s].Count} tensors)");
            using var w = new SafeTensorsWriter(Path.Combine(outDir, file), new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var t in shards[s]) w.Declare(t.Name, DType.BF16, t.Shape);
            foreach (var t in shards[s])
            {
                WriteTensor(w, t, seed);
                weightMap[t.Name] = file;
                total += t.Shape.Aggregate(2L, (a, d) => a * d);
            }
            w.Complete();
        }
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = weightMap };
        AtomicFile.WriteAllText(Path.Combine(outDir, "model.safetensors.index.json"), index.ToJsonString(new() { WriteIndented = true }));
        AtomicFile.WriteAllText(Path.Combine(outDir, "config.json"), config.ToJsonString(new() { WriteIndented = true }));
    }

    private static void WriteTensor(SafeTensorsWriter w, Spec t, int seed)
    {
        long n = t.Shape.Aggregate(1L, (a, d) => a * d);
        const int chunk = 1 << 20;
        ulong tensorSeed = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)StableHash(t.Name);
        var buf = new ushort[chunk];
        for (long done = 0, c = 0; done < n; done += chunk, c++)
        {
            int len = (int)Math.Min(chunk, n - done);
            Fill(buf.AsSpan(0, len), t.Std, tensorSeed + (ulong)c);
            w.Write<ushort>(buf.AsSpan(0, len));
        }
    }

    /// <summary>bf16 N(0, std²) values (or 1.0 when std is 0); SplitMix64 + Box–Muller, split over threads by fixed ranges.</summary>
    private static void Fill(Span<ushort> dst, float std, ulong seed)
    {
        if (std == 0) { dst.Fill(BFloat16.FromFloat(1f)); return; }
        var arr = new ushort[dst.Length];
        const int part = 1 << 16;
        Threads.For((dst.Length + part - 1) / part, p =>
        {
            ulong s = seed * 1000003UL + (ulong)p;
            int end = Math.Min(arr.Length, (p + 1) * part);
            for (int i = p * part; i < end; i += 2)
            {
                double u1 = (Next(ref s) >> 11) * (1.0 / (1UL << 53)) + 1e-300, u2 = (Next(ref s) >> 11) * (1.0 / (1UL << 53));
                double r = Math.Sqrt(-2 * Math.Log(u1)) * std;
                arr[i] = BFloat16.FromFloat((float)(r * Math.Cos(2 * Math.PI * u2)));
                if (i + 1 < end) arr[i + 1] = BFloat16.FromFloat((float)(r * Math.Sin(2 * Math.PI * u2)));
            }
        });
        arr.CopyTo(dst);
    }

    private static ulong Next(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static int StableHash(string s)
    {
        unchecked
        {
            int h = 17;
            foreach (char ch in s) h = h * 31 + ch;
            return h;
        }
    }
}
