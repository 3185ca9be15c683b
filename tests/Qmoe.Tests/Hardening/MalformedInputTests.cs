using System.Text;
using System.Text.Json.Nodes;
using Qmoe.IO;
using Qmoe.Models;
using Qmoe.Models.Layers;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Switch;
using Qmoe.Runtime;

namespace Qmoe.Tests.Hardening;

/// <summary>Inputs a code review found escaping as stack traces or unbounded allocations: each is refused with a
/// one-line <see cref="QmoeException"/> naming the file and field.</summary>
public class MalformedInputTests
{
    private static byte[] SafeTensors(string header, int dataBytes = 0)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BitConverter.GetBytes((long)h.Length).CopyTo(b, 0);
        h.CopyTo(b, 8);
        return b;
    }

    private static void AssertOneLine(QmoeException e, params string[] parts)
    {
        Assert.DoesNotContain('\n', e.Message);
        foreach (var p in parts) Assert.Contains(p, e.Message);
    }

    [Theory]
    [InlineData("[\"0\", 16]")]
    [InlineData("[0, null]")]
    [InlineData("[{}, 16]")]
    [InlineData("[0, 1.5]")]
    public void NonNumberDataOffsetsAreRefused(string offsets)
    {
        using var tmp = Paths.Temp();
        var p = tmp.File("w.safetensors");
        File.WriteAllBytes(p, SafeTensors($"{{\"t\":{{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":{offsets}}}}}", 16));
        var e = Assert.Throws<QmoeException>(() => SafeTensorsFile.Open(p).Dispose());
        AssertOneLine(e, p, "'t'", "data_offsets");
    }

    [Theory]
    [InlineData("1")]
    [InlineData("null")]
    [InlineData("[\"model.safetensors\"]")]
    public void NonStringWeightMapValueIsRefused(string value)
    {
        using var tmp = Paths.Temp();
        File.WriteAllText(tmp.File("model.safetensors.index.json"), $"{{\"weight_map\":{{\"a.weight\":{value}}}}}");
        var e = Assert.Throws<QmoeException>(() => TensorStore.Open(tmp.Path).Dispose());
        AssertOneLine(e, "model.safetensors.index.json", "weight_map['a.weight']");
    }

    [Theory]
    [InlineData(1, 128)]
    [InlineData(2, 128)]
    [InlineData(32, 16)]
    public void DegenerateRelativeAttentionBucketsAreRefused(int buckets, int maxDistance)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Paths.TinyModel, "config.json")))!.AsObject();
        json["relative_attention_num_buckets"] = buckets;
        json["relative_attention_max_distance"] = maxDistance;
        var e = Assert.Throws<QmoeException>(() => SwitchConfig.From(ConfigReader.FromJson(json, "config.json")));
        AssertOneLine(e, "config.json", "relative_attention_");
    }

    [Theory]
    [InlineData(2147483647L, 0L)]
    [InlineData(0L, 16L)]
    [InlineData(4294967296L, 0L)]
    public void EvalSetShapesWithoutDataAreRefusedBeforeAllocating(long rows, long length)
    {
        using var tmp = Paths.Temp();
        var p = tmp.File("eval.safetensors");
        File.WriteAllBytes(p, SafeTensors($"{{\"validation.raw_blocks\":{{\"dtype\":\"I32\",\"shape\":[{rows},{length}],\"data_offsets\":[0,0]}}}}"));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<QmoeException>(() => EvalSet.Load(p, "validation", 100, causal: true));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20);
        AssertOneLine(e, p, "validation.raw_blocks");
    }

    [Fact]
    public void KvCacheStartsSmallWhateverTheRequestedCapacity()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var c = new KvCache(4096, int.MaxValue);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64L << 20);
        Assert.Equal(4096 * KvCache.MaxInitialCapacity, c.K.Length);
    }

    [Fact]
    public void GenerationLengthIsCappedByTheContextAndMemory()
    {
        // A 2-layer model with 4-wide caches and a context of 512 tokens.
        Assert.Equal(502, DecoderOnlyGenerator.ClampToContext(512, 2, 4, 10, int.MaxValue));
        Assert.Equal(5, DecoderOnlyGenerator.ClampToContext(512, 2, 4, 10, 5));
        AssertOneLine(Assert.Throws<QmoeException>(() => DecoderOnlyGenerator.ClampToContext(512, 2, 4, 512, 1)), "context of 512");
        // A context of 2^31 tokens of a wide model (64 layers, 1024-wide caches) cannot fit in memory: refused before any cache exists.
        AssertOneLine(Assert.Throws<QmoeException>(() => DecoderOnlyGenerator.ClampToContext(int.MaxValue, 64, 1024, 10, int.MaxValue)), "KV caches");
    }

    [Fact]
    public void RotaryEmbeddingWithAHugeHeadDimUsesTheHeap()
    {
        // 2^20 floats per half would overflow a 1 MB stack if stack-allocated.
        var rope = new RotaryEmbedding(1 << 21, 1e4);
        var x = new float[1 << 21];
        x[0] = 1;
        rope.Apply(x, 1, 1, 3);
        Assert.Equal(MathF.Cos(3f), x[0], 5);
    }

    [Theory]
    [InlineData("num_layers", 2147483647)]
    [InlineData("num_decoder_layers", 100000)]
    [InlineData("num_experts", 2147483647)]
    public void AbsurdLayerAndExpertCountsAreRefusedBeforeAllocating(string field, int value)
    {
        // Found by FileFuzzTests at 10^4 iterations: num_layers 2^31-1 made the loader allocate 2^31 blocks.
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Paths.TinyModel, "config.json")))!.AsObject();
        json[field] = value;
        var e = Assert.Throws<QmoeException>(() => SwitchConfig.From(ConfigReader.FromJson(json, "config.json")));
        AssertOneLine(e, "config.json", field, "exceeds");
    }
}
