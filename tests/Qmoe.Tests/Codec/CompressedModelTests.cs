using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Tests.Kernels;

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
    public void StoredAndParameterDictionariesVerifyAndDecodeIdentically()
    {
        using var tmp = Paths.Temp();
        string trieDir = Path.Combine(tmp.Path, "trie"), paramDir = Path.Combine(tmp.Path, "params");
        var written = ThresholdTernary.Compress(Paths.TinyModel, trieDir, dictionary: DictionaryChoice.Fitted, storage: DictionaryStorage.Trie);
        ThresholdTernary.Compress(Paths.TinyModel, paramDir, dictionary: DictionaryChoice.Fitted, storage: DictionaryStorage.Parameters);
        using var trie = CompressedModel.Open(trieDir);
        using var param = CompressedModel.Open(paramDir);
        Assert.True(trie.Store.Contains(CompressedFormat.DictionaryTrieTensor) && !trie.Store.Contains(CompressedFormat.DictionaryCostsTensor));
        Assert.True(param.Store.Contains(CompressedFormat.DictionaryCostsTensor) && !param.Store.Contains(CompressedFormat.DictionaryTrieTensor));
        Assert.Equal(trie.Store.Names.Count(), CompressedModelVerifier.Verify(trie));
        Assert.Equal(param.Store.Names.Count(), CompressedModelVerifier.Verify(param));
        Assert.True(trie.Dictionary.SameEntries(param.Dictionary));
        foreach (var ((prefix, kind, e), expected) in written)
        {
            var a = trie.Expert(prefix, kind, e);
            var b = param.Expert(prefix, kind, e);
            Assert.True(a.Codes.SequenceEqual(b.Codes));
            Assert.Equal(expected.Trits, TernaryDecoder.Decode(a.ToEncoded(), trie.Dictionary));
            Assert.Equal(expected.Trits, TernaryDecoder.Decode(b.ToEncoded(), param.Dictionary));
        }
        // Every byte counted: the record replaces a 55-61 KB trie with 80 bytes, and Auto takes it.
        var (st, sp) = (ModelStatistics.Compute(trie), ModelStatistics.Compute(param));
        Assert.Equal(80, sp.DictionaryBytes);
        Assert.True(sp.ExpertBytes < st.ExpertBytes);
    }

    [Fact]
    public void AutoStorageTakesTheSmallerLayout()
    {
        using var tmp = Paths.Temp();
        string[] dirs = [.. new[] { "auto", "trie", "params" }.Select(d => Path.Combine(tmp.Path, d))];
        SmallModel.Write(dirs[0]);
        SmallModel.Write(dirs[1], storage: DictionaryStorage.Trie);
        SmallModel.Write(dirs[2], storage: DictionaryStorage.Parameters);
        var sizes = dirs.Select(d => new FileInfo(Path.Combine(d, "model.safetensors")).Length).ToArray();
        Assert.True(sizes[2] < sizes[1]);
        Assert.Equal(File.ReadAllBytes(Path.Combine(dirs[2], "model.safetensors")), File.ReadAllBytes(Path.Combine(dirs[0], "model.safetensors")));
        // A dictionary that cannot be regenerated (read back from a trie) can only be stored as a trie.
        using var m = CompressedModel.Open(dirs[1]);
        var stored = CodeDictionary.FromEntries(m.Dictionary.Entries, "test");
        Assert.False(stored.IsRegenerable);
        Assert.Equal(CompressedFormat.DictionaryTrieTensor, DictionaryRecord.Encode(stored, CompressedFormat.Version2, DictionaryStorage.Auto, 0).Name);
        Assert.Throws<QmoeException>(() => DictionaryRecord.Encode(stored, CompressedFormat.Version2, DictionaryStorage.Parameters, 0));
    }

    [Fact]
    public void FuzzedParameterRecordsAreRefusedCleanlyOrDecodeTheSame()
    {
        using var tmp = Paths.Temp();
        string good = Path.Combine(tmp.Path, "good"), bad = Path.Combine(tmp.Path, "bad");
        SmallModel.Write(good, storage: DictionaryStorage.Parameters);
        Directory.CreateDirectory(bad);
        File.Copy(Path.Combine(good, "config.json"), Path.Combine(bad, "config.json"));
        byte[] weights = File.ReadAllBytes(Path.Combine(good, "model.safetensors"));
        long offset;
        using (var f = SafeTensorsFile.Open(Path.Combine(good, "model.safetensors"))) offset = f.Info(CompressedFormat.DictionaryCostsTensor).Offset;
        using var reference = CompressedModel.Open(good);
        var rnd = new Random(18);
        int refused = 0, iterations = 40;
        for (int i = 0; i < iterations; i++)
        {
            var w = (byte[])weights.Clone();
            if (i % 2 == 0) w[offset + rnd.Next(80)] ^= (byte)(1 << rnd.Next(8)); // a bit flip in a cost or the checksum
            else rnd.NextBytes(w.AsSpan((int)offset + 8 * rnd.Next(10), 8));    // one element replaced by random bits
            File.WriteAllBytes(Path.Combine(bad, "model.safetensors"), w);
            try
            {
                using var m = CompressedModel.Open(bad);
                Assert.True(m.Dictionary.SameEntries(reference.Dictionary), $"iteration {i}: a changed record decoded with another dictionary");
            }
            catch (QmoeException e)
            {
                Assert.DoesNotContain('\n', e.Message);
                Assert.Contains("qmoe.dictionary_costs", e.Message);
                refused++;
            }
        }
        Assert.True(refused > iterations / 2, $"only {refused} of {iterations} damaged records were refused");
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

    [Theory]
    [InlineData(100_000)] // everything: every row
    [InlineData(1_000)]   // every 2nd row of 1,665 trits
    [InlineData(40)]      // every 42nd row: fewer rows than experts
    public void DictionarySampleIsEveryKthTernaryRowWithinItsBudget(long sampleTrits)
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(5);
        // Odd widths, so most rows start inside a packed byte; group "b" has an n-bit expert, which is not sampled.
        var a = Enumerable.Range(0, 3).Select(_ => StoredExpert.Of(SmallModel.Matrix(rnd, 9, 37))).ToList();
        var b = new[] { StoredExpert.Of(SmallModel.Matrix(rnd, 37, 9)), StoredExpert.Of(NBitMatVecTests.RandomMatrix(rnd, 2, 37, 9)),
            StoredExpert.Of(SmallModel.Matrix(rnd, 37, 9)) };
        var rows = a.Concat(b).Where(x => x.Ternary != null)
            .SelectMany(x => Enumerable.Range(0, x.Ternary!.Rows).Select(r => x.Ternary!.Trits.AsSpan(r * x.Ternary.Cols, x.Ternary.Cols).ToArray()))
            .ToList();
        long total = rows.Sum(r => (long)r.Length);
        using var w = new CompressedModelWriter(tmp.Path, new JsonObject(), dictionary: DictionaryChoice.Fitted);
        w.AddExpertGroup("a", "wi", a);
        w.AddExpertGroup("b", "wo", b);

        var sample = w.SampleRows(sampleTrits).ToList();
        long k = Math.Max(1, (total + sampleTrits - 1) / sampleTrits);
        var expected = rows.Where((_, i) => i % k == k / 2).ToList();
        Assert.Equal(expected.Count, sample.Count);
        for (int i = 0; i < sample.Count; i++) Assert.Equal(expected[i], sample[i]);
        Assert.InRange(sample.Sum(r => (long)r.Length), 1, sampleTrits + 37); // on average ≤ sampleTrits; widths differ by group
        w.Complete();
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

    public static void Write(string dir, JsonObject? config = null, int version = CompressedFormat.LatestVersion, bool rowCounts = false,
        DictionaryStorage storage = DictionaryStorage.Auto)
    {
        var rnd = new Random(3);
        var plain = new byte[4 * 12];
        rnd.NextBytes(plain);
        using var w = new CompressedModelWriter(dir, config ?? new JsonObject { ["num_experts"] = 3 }, dictionary: DictionaryChoice.Default, formatVersion: version,
            storeRowCounts: rowCounts, dictionaryStorage: storage);
        w.AddTensor(new PlainTensor("shared.weight", DType.F32, [3, 4], () => plain));
        w.AddExpertGroup("a", "wi", [.. Enumerable.Range(0, 3).Select(_ => Matrix(rnd, 9, 37))]);
        w.AddExpertGroup("b", "wo", [.. Enumerable.Range(0, 3).Select(_ => Matrix(rnd, 37, 9))]);
        w.Complete();
    }
}
