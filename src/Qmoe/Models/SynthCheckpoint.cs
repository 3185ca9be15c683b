using System.Text.Json;
using System.Text.Json.Nodes;
using Qmoe.IO;

namespace Qmoe.Models;

/// <summary>What <see cref="SynthCheckpoint.Write"/> produced.</summary>
public sealed record SynthResult(string Dir, int Shards, long Parameters, long Bytes, double Seconds);

/// <summary>
/// Writes a random bf16 Hugging Face checkpoint of a <see cref="SynthShape"/> for scale runs: config.json,
/// shards of at most <c>shardBytes</c> with model.safetensors.index.json, and a SentencePiece model so the
/// result loads and runs. Streaming: tensors are generated in fixed-size chunks straight into the
/// <see cref="SafeTensorsWriter"/>, so memory stays at a few chunks whatever the model size. Every chunk has
/// its own random stream seeded from (seed, tensor index, chunk index), so the bytes do not depend on the
/// thread count.
/// </summary>
public static class SynthCheckpoint
{
    /// <summary>Elements per generated chunk (4 Mi bf16 = 8 MiB).</summary>
    private const int ChunkElements = 1 << 22;

    public static SynthResult Write(SynthShape shape, string outDir, string tokenizerModel, ulong seed = 0,
        long shardBytes = 2L << 30, Action<string>? progress = null)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        outDir = Path.GetFullPath(outDir);
        if (Directory.Exists(outDir) || File.Exists(outDir))
            throw new QmoeException($"{outDir}: output already exists; choose another --out or delete it");
        if (!File.Exists(tokenizerModel)) throw new QmoeException($"{tokenizerModel}: tokenizer model not found");
        if (shardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(shardBytes));
        var tensors = shape.Tensors().ToList();
        var shards = Partition(tensors, shardBytes);
        string tmp = $"{outDir}.tmp-{Environment.ProcessId}";
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        try
        {
            var weightMap = new JsonObject();
            int index = 0;
            for (int s = 0; s < shards.Count; s++)
            {
                string file = shards.Count == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
                using var w = new SafeTensorsWriter(Path.Combine(tmp, file), new Dictionary<string, string> { ["format"] = "pt" });
                foreach (var t in shards[s]) { w.Declare(t.Name, DType.BF16, t.Shape); weightMap[t.Name] = file; }
                foreach (var t in shards[s])
                {
                    progress?.Invoke($"{file}: {t.Name}");
                    WriteTensor(w, t, seed, index++);
                }
                w.Complete();
            }
            long bytes = tensors.Sum(t => t.Elements * 2);
            if (shards.Count > 1)
            {
                var idx = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = bytes }, ["weight_map"] = weightMap };
                AtomicFile.WriteAllText(Path.Combine(tmp, "model.safetensors.index.json"), idx.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            }
            AtomicFile.WriteAllText(Path.Combine(tmp, "config.json"), shape.Config().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Copy(tokenizerModel, Path.Combine(tmp, "spiece.model"));
            Directory.Move(tmp, outDir);
            return new SynthResult(outDir, shards.Count, tensors.Sum(t => t.Elements), bytes, sw.Elapsed.TotalSeconds);
        }
        catch
        {
            try { Directory.Delete(tmp, true); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>
    /// The values <see cref="Write"/> stores for tensor <paramref name="name"/> of <paramref name="shape"/> with the same
    /// seed (bf16, widened to f32), generated in memory without writing a checkpoint.
    /// </summary>
    public static float[] Values(SynthShape shape, string name, ulong seed = 0)
    {
        var tensors = shape.Tensors().ToList();
        int index = tensors.FindIndex(t => t.Name == name);
        if (index < 0) throw new QmoeException($"synthetic {shape.Family}: no tensor '{name}'");
        var t = tensors[index];
        if (t.Elements > Array.MaxLength) throw new QmoeException($"synthetic tensor '{name}' has {t.Elements} elements, too many for one array");
        var bits = new ushort[t.Elements];
        int chunks = (int)((t.Elements + ChunkElements - 1) / ChunkElements);
        Threads.For(chunks, c =>
        {
            long start = (long)c * ChunkElements;
            Fill(bits.AsSpan((int)start, (int)Math.Min(ChunkElements, t.Elements - start)), t, Mix(seed, (ulong)index, (ulong)c));
        });
        var values = new float[t.Elements];
        for (long i = 0; i < values.Length; i++) values[i] = BFloat16.ToFloat(bits[i]);
        return values;
    }

    /// <summary>Consecutive tensors into shards of at most <paramref name="shardBytes"/> (a larger tensor gets a shard of its own).</summary>
    private static List<List<SynthTensor>> Partition(List<SynthTensor> tensors, long shardBytes)
    {
        var shards = new List<List<SynthTensor>> { new() };
        long size = 0;
        foreach (var t in tensors)
        {
            long b = t.Elements * 2;
            if (shards[^1].Count > 0 && size + b > shardBytes) { shards.Add(new()); size = 0; }
            shards[^1].Add(t);
            size += b;
        }
        return shards;
    }

    private static void WriteTensor(SafeTensorsWriter w, SynthTensor t, ulong seed, int tensorIndex)
    {
        long n = t.Elements;
        // A batch of chunks is generated in parallel, then written in order.
        int parallel = Math.Max(1, Threads.Count);
        var buffers = Enumerable.Range(0, parallel).Select(_ => new ushort[ChunkElements]).ToArray();
        long chunks = (n + ChunkElements - 1) / ChunkElements;
        for (long c0 = 0; c0 < chunks; c0 += parallel)
        {
            int batch = (int)Math.Min(parallel, chunks - c0);
            Threads.For(batch, i =>
            {
                long c = c0 + i;
                int len = (int)Math.Min(ChunkElements, n - c * ChunkElements);
                Fill(buffers[i].AsSpan(0, len), t, Mix(seed, (ulong)tensorIndex, (ulong)c));
            });
            for (int i = 0; i < batch; i++)
                w.Write<ushort>(buffers[i].AsSpan(0, (int)Math.Min(ChunkElements, n - (c0 + i) * ChunkElements)));
        }
    }

    /// <summary>bf16 ones, or N(0, std²) by Box–Muller from a SplitMix64 stream.</summary>
    private static void Fill(Span<ushort> dst, SynthTensor t, ulong state)
    {
        if (t.Ones) { dst.Fill(BFloat16.FromFloat(1f)); return; }
        for (int i = 0; i < dst.Length; i += 2)
        {
            // u1 in (0, 1], u2 in [0, 1): 24-bit uniforms.
            float u1 = ((SplitMix(ref state) >> 40) + 1) * (1f / (1 << 24));
            float u2 = (SplitMix(ref state) >> 40) * (1f / (1 << 24));
            float r = t.Std * MathF.Sqrt(-2f * MathF.Log(u1));
            var (sin, cos) = MathF.SinCos(2f * MathF.PI * u2);
            dst[i] = BFloat16.FromFloat(r * cos);
            if (i + 1 < dst.Length) dst[i + 1] = BFloat16.FromFloat(r * sin);
        }
    }

    private static ulong SplitMix(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Mix(ulong seed, ulong tensor, ulong chunk)
    {
        ulong s = seed;
        ulong a = SplitMix(ref s) ^ tensor;
        ulong b = SplitMix(ref a) ^ chunk;
        return SplitMix(ref b);
    }
}
