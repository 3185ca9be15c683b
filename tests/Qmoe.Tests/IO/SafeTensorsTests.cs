using System.Text;
using Qmoe.IO;

namespace Qmoe.Tests.IO;

public class SafeTensorsTests
{
    private static byte[] FileWithHeader(string header, int dataBytes)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var b = new byte[8 + h.Length + dataBytes];
        BitConverter.GetBytes((long)h.Length).CopyTo(b, 0);
        h.CopyTo(b, 8);
        return b;
    }

    private static QmoeException Refused(byte[] bytes)
    {
        using var tmp = Paths.Temp();
        var p = tmp.File("bad.safetensors");
        File.WriteAllBytes(p, bytes);
        var e = Assert.Throws<QmoeException>(() => SafeTensorsFile.Open(p).Dispose());
        Assert.Contains(p, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    [Fact]
    public void RoundTripsEveryDTypeWithHashes()
    {
        using var tmp = Paths.Temp();
        var p = tmp.File("t.safetensors");
        var rnd = new Random(1);
        var tensors = new List<(string, DType, long[], byte[])>();
        foreach (var dt in Enum.GetValues<DType>())
        {
            var data = new byte[3 * 5 * dt.Size()];
            rnd.NextBytes(data);
            tensors.Add(($"t.{dt}", dt, new long[] { 3, 5 }, data));
        }
        tensors.Add(("empty", DType.F32, new long[] { 0, 4 }, Array.Empty<byte>()));
        SafeTensorsWriter.WriteAll(p, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        Assert.False(File.Exists(AtomicFile.TempName(p)));
        using var f = SafeTensorsFile.Open(p);
        Assert.Equal("pt", f.Metadata["format"]);
        foreach (var (name, dt, shape, data) in tensors)
        {
            var info = f.Info(name);
            Assert.Equal(dt, info.DType);
            Assert.Equal(shape, info.Shape);
            Assert.Equal(data, f.Bytes(name).ToArray());
            Assert.Equal(System.IO.Hashing.XxHash64.HashToUInt64(data).ToString("x16"), f.Metadata[SafeTensorsWriter.HashPrefix + name]);
        }
        Assert.Equal(0, (f.HeaderLength + 8) % 8);
    }

    [Fact]
    public void ReadsBf16AsFloat()
    {
        using var tmp = Paths.Temp();
        var p = tmp.File("b.safetensors");
        float[] vals = { 1f, -2.5f, 0.15625f, 3e-5f };
        var bf = vals.Select(BFloat16.FromFloat).ToArray();
        SafeTensorsWriter.WriteAll(p, new[] { ("x", DType.BF16, new long[] { 4 }, bf.SelectMany(BitConverter.GetBytes).ToArray()) });
        using var f = SafeTensorsFile.Open(p);
        var back = f.ReadFloat32("x");
        for (int i = 0; i < vals.Length; i++) Assert.Equal(BFloat16.Round(vals[i]), back[i]);
    }

    [Fact]
    public void Bf16RoundsToNearestEven()
    {
        Assert.Equal(0x3F80, BFloat16.FromFloat(1f));
        Assert.Equal(0x3F80, BFloat16.FromFloat(BitConverter.Int32BitsToSingle(0x3F808000))); // tie -> even
        Assert.Equal(0x3F82, BFloat16.FromFloat(BitConverter.Int32BitsToSingle(0x3F818000))); // tie -> even (up)
        Assert.True(float.IsNaN(BFloat16.ToFloat(BFloat16.FromFloat(float.NaN))));
        var src = Enumerable.Range(0, 37).Select(i => (ushort)(i * 1777)).ToArray();
        var dst = new float[37];
        BFloat16.ToFloat(src, dst);
        for (int i = 0; i < 37; i++) Assert.Equal(BFloat16.ToFloat(src[i]), dst[i]);
    }

    [Fact] public void RefusesTinyFile() => Assert.Contains("truncated", Refused(new byte[3]).Message);
    [Fact] public void RefusesAbsurdHeaderLength()
    {
        var b = new byte[16];
        BitConverter.GetBytes(1L << 50).CopyTo(b, 0);
        Assert.Contains("absurd", Refused(b).Message);
    }
    [Fact] public void RefusesHeaderPastEnd()
    {
        var b = FileWithHeader("{}", 0);
        BitConverter.GetBytes(100L).CopyTo(b, 0);
        Assert.Contains("past the end", Refused(b).Message);
    }
    [Fact] public void RefusesBadJson() => Assert.Contains("JSON", Refused(FileWithHeader("{\"a\": [", 0)).Message);
    [Fact] public void RefusesOffsetsPastEnd() =>
        Assert.Contains("'w'", Refused(FileWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8)).Message);
    [Fact] public void RefusesWrongByteLength() =>
        Assert.Contains("needs 16", Refused(FileWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", 8)).Message);
    [Fact] public void RefusesUnknownDType() =>
        Assert.Contains("unsupported dtype", Refused(FileWithHeader("{\"w\":{\"dtype\":\"F8_E5M2\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4)).Message);
    [Fact] public void RefusesOverlap() =>
        Assert.Contains("overlaps", Refused(FileWithHeader(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12)).Message);
    [Fact] public void RefusesOverflowingShape() =>
        Assert.Contains("'w'", Refused(FileWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 4)).Message);

    [Fact]
    public void TruncatedRealModelIsRefusedNamingTensor()
    {
        using var tmp = Paths.Temp();
        var src = File.ReadAllBytes(Path.Combine(Paths.TinyModel, "model.safetensors"));
        var e = Refused(src[..(src.Length / 2)]);
        Assert.Contains("tensor '", e.Message);
    }

    [Fact]
    public void ShardedIndexIsFollowed()
    {
        using var tmp = Paths.Temp();
        SafeTensorsWriter.WriteAll(tmp.File("model-00001-of-00002.safetensors"), new[] { ("a", DType.F32, new long[] { 1 }, BitConverter.GetBytes(1f)) });
        SafeTensorsWriter.WriteAll(tmp.File("model-00002-of-00002.safetensors"), new[] { ("b", DType.F32, new long[] { 1 }, BitConverter.GetBytes(2f)) });
        File.WriteAllText(tmp.File("model.safetensors.index.json"),
            "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00002-of-00002.safetensors\"}}");
        using var store = TensorStore.Open(tmp.Path);
        Assert.Equal(1f, store.ReadFloat32("a", 1)[0]);
        Assert.Equal(2f, store.ReadFloat32("b", 1)[0]);
        Assert.Throws<QmoeException>(() => store.ReadFloat32("b", 2));
        Assert.Throws<QmoeException>(() => store.Info("c"));
    }

    [Fact]
    public void AbandonedWriterLeavesNothing()
    {
        using var tmp = Paths.Temp();
        var p = tmp.File("x.safetensors");
        using (var w = new SafeTensorsWriter(p))
        {
            w.Declare("a", DType.F32, 4);
            w.Write(new byte[8]);
        }
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }
}
