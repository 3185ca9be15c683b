using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;

namespace Qmoe.Tests.Codec;

public class CompressedModelTests
{
    [Theory]
    [InlineData(CompressedFormat.Version1, DictionaryChoice.Default, false)]
    [InlineData(CompressedFormat.Version2, DictionaryChoice.Default, true)]
    [InlineData(CompressedFormat.Version2, DictionaryChoice.Fitted, false)]
    public void TinyModelRoundTripsThroughTheContainer(int version, DictionaryChoice choice, bool rowCounts)
    {
        using var tmp = Paths.Temp();
        var written = ThresholdTernary.Compress(Paths.TinyModel, tmp.Path, version, choice, rowCounts);
        Assert.Equal(new[] { "config.json", "model.safetensors" }, Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order());

        using var model = CompressedModel.Open(tmp.Path);
        Assert.Equal(version, model.FormatVersion);
        Assert.Equal(4, model.Groups.Count);
        foreach (var ((prefix, kind, e), expected) in written)
        {
            var m = model.Expert(prefix, kind, e);
            Assert.Equal((expected.Rows, expected.Cols), (m.Rows, m.Cols));
            Assert.Equal(expected.Scales, m.Scales.ToArray());
            Assert.Equal(expected.Trits, TernaryDecoder.Decode(m.ToEncoded(), model.Dictionary));
        }
        using var input = TensorStore.Open(Paths.TinyModel);
        foreach (var t in model.PlainTensors())
            Assert.True(input.FileOf(t.Name).Bytes(t.Name).SequenceEqual(model.Store.FileOf(t.Name).Bytes(t)), t.Name);
        Assert.Equal(input.Names.Count(n => !n.Contains(".experts.")), model.PlainTensors().Count());

        var q = model.Config["quantization_config"]!.AsObject();
        Assert.Equal("qmoe", (string?)q["quant_method"]);
        Assert.Equal(version, (int)q["format_version"]!);
        Assert.Equal("threshold", (string?)q["method"]);
        Assert.Equal(8, (int)model.Config["num_experts"]!);

        Assert.Equal(model.Store.Names.Count(), CompressedModelVerifier.Verify(model));
        var stats = ModelStatistics.Compute(model);
        var all = written.Values.Aggregate(default(TritStatistics), (a, m) => a + TritStatistics.Of(m.Trits));
        Assert.Equal(all, stats.Trits);
        Assert.Equal(written.Values.Sum(m => (long)m.Trits.Length), stats.ExpertParameters);
        string[] index = [.. model.Store.Names.Where(n => n.EndsWith(".row_offsets") || n.EndsWith(".row_counts"))];
        Assert.Equal(version == 1 || rowCounts ? 4 : 0, index.Length);
    }

    [Fact]
    public void DisposeWithoutCompleteLeavesNothing()
    {
        using var tmp = Paths.Temp();
        using (var w = new CompressedModelWriter(tmp.Path, new JsonObject(), dictionary: DictionaryChoice.Default))
        {
            w.AddExpertGroup("l", "wi", [SmallModel.Matrix(new Random(1), 4, 6)]);
        }
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }

    [Fact]
    public void VerifyNamesTheCorruptTensor()
    {
        using var tmp = Paths.Temp();
        SmallModel.Write(tmp.Path);
        using (var model = CompressedModel.Open(tmp.Path)) CompressedModelVerifier.Verify(model);
        string file = Path.Combine(tmp.Path, "model.safetensors");
        long offset;
        using (var f = SafeTensorsFile.Open(file)) offset = f.Info("b.experts.wo.scale_fields").Offset + 3;
        var bytes = File.ReadAllBytes(file);
        bytes[offset] ^= 0x10;
        File.WriteAllBytes(file, bytes);
        using var corrupt = CompressedModel.Open(tmp.Path);
        var e = Assert.Throws<QmoeException>(() => CompressedModelVerifier.Verify(corrupt));
        Assert.Contains("'b.experts.wo.scale_fields' is corrupt", e.Message);
    }

    [Fact]
    public void OpenRefusesShapesThatContradictTheConfig()
    {
        using var tmp = Paths.Temp();
        SmallModel.Write(tmp.Path, new JsonObject { ["num_experts"] = 5 });
        var e = Assert.Throws<QmoeException>(() => CompressedModel.Open(tmp.Path).Dispose());
        Assert.Contains("config.json says 5", e.Message);
    }

    [Fact]
    public void OpenRefusesUnknownFormatVersion()
    {
        using var tmp = Paths.Temp();
        SmallModel.Write(tmp.Path);
        string cfg = Path.Combine(tmp.Path, "config.json");
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("\"format_version\": 2", "\"format_version\": 7"));
        Assert.Contains("format_version 7", Assert.Throws<QmoeException>(() => CompressedModel.Open(tmp.Path).Dispose()).Message);
    }
}

/// <summary>A small synthetic compressed model (two groups of three experts, odd widths) for container tests.</summary>
internal static class SmallModel
{
    public static TernaryMatrix Matrix(Random rnd, int rows, int cols)
    {
        var scales = new ushort[2 * rows];
        for (int r = 0; r < rows; r++)
        {
            scales[2 * r] = BFloat16.FromFloat(-(float)rnd.NextDouble());
            scales[2 * r + 1] = BFloat16.FromFloat((float)rnd.NextDouble());
        }
        return new TernaryMatrix(rows, cols, RandomTrits.Iid(rnd, rows * cols, 0.85), scales);
    }

    public static void Write(string dir, JsonObject? config = null, int version = CompressedFormat.LatestVersion, bool rowCounts = false)
    {
        var rnd = new Random(3);
        var plain = new byte[4 * 12];
        rnd.NextBytes(plain);
        using var w = new CompressedModelWriter(dir, config ?? new JsonObject { ["num_experts"] = 3 }, dictionary: DictionaryChoice.Default, formatVersion: version,
            storeRowCounts: rowCounts);
        w.AddTensor(new PlainTensor("shared.weight", DType.F32, [3, 4], () => plain));
        w.AddExpertGroup("a", "wi", [.. Enumerable.Range(0, 3).Select(_ => Matrix(rnd, 9, 37))]);
        w.AddExpertGroup("b", "wo", [.. Enumerable.Range(0, 3).Select(_ => Matrix(rnd, 37, 9))]);
        w.Complete();
    }
}
