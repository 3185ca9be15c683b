using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Runtime;

namespace Qmoe.Tests.Codec;

/// <summary>
/// Sharded compressed output (HF index, groups split over shards by expert range): it reads, verifies and runs
/// exactly like the single-file write of the same experts, and every shard's corruption or absence is named.
/// </summary>
public class ShardedModelTests : IClassFixture<ShardedModelTests.Models>
{
    /// <summary>The tiny model's experts (threshold-ternarized) written as one file and as many small shards.</summary>
    public sealed class Models : IDisposable
    {
        public Paths.TempDir Tmp { get; } = Paths.Temp();
        public string Single => Tmp.File("single");
        public string Sharded => Tmp.File("sharded");
        /// <summary>24 KiB shards: smaller than a group (8 experts of ~5 KB each), so groups span shards.</summary>
        public const long ShardBytes = 24 << 10;

        public Models()
        {
            ThresholdTernary.Compress(Paths.TinyModel, Single, dictionary: DictionaryChoice.Fitted);
            ThresholdTernary.Compress(Paths.TinyModel, Sharded, dictionary: DictionaryChoice.Fitted, shardBytes: ShardBytes);
            foreach (var dir in new[] { Single, Sharded })
                File.Copy(Path.Combine(Paths.TinyModel, "spiece.model"), Path.Combine(dir, "spiece.model"));
        }

        public void Dispose() => Tmp.Dispose();
    }

    private readonly Models _m;
    public ShardedModelTests(Models m) { _m = m; }

    private static string[] Shards(string dir) =>
        Directory.GetFiles(dir, "model-*-of-*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Fact]
    public void ShardsSplitGroupsAndReadLikeTheSingleFile()
    {
        Assert.True(File.Exists(Path.Combine(_m.Single, CompressedFormat.WeightsFile)));
        Assert.False(File.Exists(Path.Combine(_m.Sharded, CompressedFormat.WeightsFile)));
        var shards = Shards(_m.Sharded);
        Assert.True(shards.Length > 4, $"{shards.Length} shards");
        Assert.Equal(CompressedFormat.ShardFile(1, shards.Length), shards[0]);

        using var single = CompressedModel.Open(_m.Single);
        using var sharded = CompressedModel.Open(_m.Sharded);
        Assert.Equal(CompressedModelVerifier.Verify(single) > 0, CompressedModelVerifier.Verify(sharded) > 0);
        Assert.Contains(sharded.Groups, g => g.Parts.Count > 1); // some group really spans shards
        Assert.Equal(single.Dictionary.Entries.ToArray(), sharded.Dictionary.Entries.ToArray());
        foreach (var (g, h) in single.Groups.Zip(sharded.Groups))
        {
            Assert.Equal(g.Name, h.Name);
            Assert.Equal(g.CodeBytes, h.CodeBytes);
            for (int e = 0; e < g.Experts; e++)
            {
                var a = single.Expert(g, e);
                var b = sharded.Expert(h, e);
                Assert.True(a.Codes.SequenceEqual(b.Codes), $"{g.Name} expert {e} codes");
                Assert.True(a.RowOffsets.SequenceEqual(b.RowOffsets), $"{g.Name} expert {e} rows");
                Assert.True(a.Scales.SequenceEqual(b.Scales), $"{g.Name} expert {e} scales");
            }
        }
        foreach (var shard in shards) // each shard carries its own checksums
            using (var f = SafeTensorsFile.Open(Path.Combine(_m.Sharded, shard)))
                Assert.All(f.Names, n => Assert.True(f.Metadata.ContainsKey(SafeTensorsWriter.HashPrefix + n), $"{shard}: {n}"));
        // inspect's figures: the split groups add one scale table and one expert offset per extra part, nothing else.
        var s1 = ModelStatistics.Compute(single);
        var s2 = ModelStatistics.Compute(sharded);
        long extraParts = sharded.Groups.Sum(g => g.Parts.Count - 1);
        long extraTables = sharded.Groups.Sum(g => (g.Parts.Count - 1) * g.Parts[0].ScaleTableTensor!.ByteLength);
        Assert.Equal(s1.ExpertBytes + 8 * extraParts + extraTables, s2.ExpertBytes);
        Assert.Equal(s1.CodeBitsPerParam, s2.CodeBitsPerParam);
    }

    [Fact]
    public void ShardedModelEvaluatesAndGeneratesLikeTheSingleFile()
    {
        using var a = ModelLoader.Open(_m.Single);
        using var b = ModelLoader.Open(_m.Sharded);
        var data = EvalSet.Load(Paths.EvalSets, "validation", a.VocabSize, limit: 8);
        Assert.Equal(a.Evaluate(data).MeanCe, b.Evaluate(data).MeanCe);
        const string prompt = "The LORD is my shepherd; I shall not <extra_id_0>.";
        Assert.Equal(Generation.Run(a, prompt, 12).OutputIds, Generation.Run(b, prompt, 12).OutputIds);
    }

    [Fact]
    public void AFlippedByteInAnyShardIsNamedByVerify()
    {
        using var tmp = Paths.CopyOf(_m.Sharded);
        foreach (var shard in Shards(_m.Sharded))
        {
            string path = Path.Combine(tmp.Path, shard);
            var original = File.ReadAllBytes(path);
            var bytes = original.ToArray();
            long data = 8 + BitConverter.ToInt64(bytes, 0);
            bytes[data + (bytes.Length - data) / 2] ^= 0x10; // a byte in the middle of the tensor data
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<QmoeException>(() =>
            {
                using var m = CompressedModel.Open(tmp.Path); // open may already refuse it (offsets, codes, scales)
                CompressedModelVerifier.Verify(m);
            });
            Assert.Contains(shard, e.Message);
            File.WriteAllBytes(path, original);
        }
    }

    private static JsonObject Index(string dir) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(dir, CompressedFormat.IndexFile)))!.AsObject();

    [Fact]
    public void AShardMissingFromTheIndexOrFromDiskIsRefused()
    {
        using var tmp = Paths.CopyOf(_m.Sharded);
        var index = Index(tmp.Path);
        var map = index["weight_map"]!.AsObject();
        // The shard holding the second part of a split group: its tensors dropped from the index.
        string shard = (string)map.First(kv => kv.Key.Contains(".range_") && !kv.Key.Contains(".range_0_") && kv.Key.EndsWith(".codes")).Value!;
        foreach (var name in map.Where(kv => (string)kv.Value! == shard).Select(kv => kv.Key).ToList()) map.Remove(name);
        File.WriteAllText(Path.Combine(tmp.Path, CompressedFormat.IndexFile), index.ToJsonString());
        var e = Assert.Throws<QmoeException>(() => CompressedModel.Open(tmp.Path).Dispose());
        Assert.Contains("missing experts", e.Message);

        using var tmp2 = Paths.CopyOf(_m.Sharded);
        File.Delete(Path.Combine(tmp2.Path, shard));
        e = Assert.Throws<QmoeException>(() => CompressedModel.Open(tmp2.Path).Dispose());
        Assert.Contains(shard, e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void AnIndexNamingATensorTwiceIsRefused()
    {
        using var tmp = Paths.CopyOf(_m.Sharded);
        string path = Path.Combine(tmp.Path, CompressedFormat.IndexFile);
        string text = File.ReadAllText(path);
        int at = text.IndexOf("\"weight_map\": {", StringComparison.Ordinal) + "\"weight_map\": {".Length;
        var first = Index(tmp.Path)["weight_map"]!.AsObject().First();
        File.WriteAllText(path, text.Insert(at, $"\n    \"{first.Key}\": \"{(string)first.Value!}\","));
        var e = Assert.Throws<QmoeException>(() => CompressedModel.Open(tmp.Path).Dispose());
        Assert.Contains($"names tensor '{first.Key}' twice", e.Message);
    }

    [Fact]
    public void AFailedWriteLeavesNothingUnderTheFinalNames()
    {
        // A plain tensor whose source fails with the disk-full error part-way through the shards.
        using var tmp = Paths.Temp();
        string dir = tmp.File("out");
        int calls = 0;
        using (var w = new CompressedModelWriter(dir, new JsonObject(), dictionary: DictionaryChoice.Default, shardBytes: 64))
        {
            for (int i = 0; i < 4; i++)
            {
                int k = i;
                w.AddTensor(new PlainTensor($"t{k}", DType.F32, [32], () =>
                    ++calls == 3 ? throw new IOException("No space left on device") : new byte[128]));
            }
            w.AddExpertGroup("l", "wi", [ThresholdTernary.Ternarize(Enumerable.Range(0, 24).Select(v => (float)Math.Sin(v)).ToArray(), 4, 6)]);
            var e = Assert.Throws<QmoeException>(w.Complete);
            Assert.Contains("No space left on device", e.Message);
            Assert.Contains(dir, e.Message);
        }
        Assert.Equal(3, calls);
        Assert.Empty(Directory.GetFileSystemEntries(dir)); // shards 1-2 removed, no temporaries, no index, no config
    }
}
