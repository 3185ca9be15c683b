using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Tests.Kernels;

namespace Qmoe.Tests.Codec;

/// <summary>Groups mixing ternary and n-bit experts (issue 16) round-trip through the writer and reader.</summary>
public class NBitGroupTests
{
    private static readonly string[] Types = ["ternary", "2", "3", "4"];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MixedGroupRoundTrips(bool rowCounts)
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(11);
        // Group "a": ternary, 2-bit, 4-bit, ternary; group "b": all 3-bit; group "c": all ternary (no type tensors).
        StoredExpert Make(string type, int rows, int cols) => type == "ternary"
            ? StoredExpert.Of(SmallModel.Matrix(rnd, rows, cols))
            : StoredExpert.Of(NBitMatVecTests.RandomMatrix(rnd, int.Parse(type), rows, cols));
        var a = new[] { "ternary", "2", "4", "ternary" }.Select(t => Make(t, 9, 37)).ToList();
        var b = Enumerable.Range(0, 4).Select(_ => Make("3", 37, 9)).ToList();
        var c = Enumerable.Range(0, 4).Select(_ => Make("ternary", 9, 37)).ToList();
        using (var w = new CompressedModelWriter(tmp.Path, new JsonObject { ["num_experts"] = 4 }, dictionary: DictionaryChoice.Default, storeRowCounts: rowCounts))
        {
            w.AddExpertGroup("a", "wi", a);
            w.AddExpertGroup("b", "wo", b);
            w.AddExpertGroup("c", "wi", c);
            w.Complete();
        }
        using var model = CompressedModel.Open(tmp.Path);
        Assert.Equal("mixed", (string?)model.Config["quantization_config"]!["bits"]);
        Assert.Null(model.Group("c", "wi").NBit);
        Assert.DoesNotContain(model.Store.Names, n => n.StartsWith("c.experts.wi.") && n.EndsWith("types"));
        foreach (var (prefix, kind, experts) in new[] { ("a", "wi", a), ("b", "wo", b), ("c", "wi", c) })
        {
            var g = model.Group(prefix, kind);
            for (int e = 0; e < experts.Count; e++)
            {
                var x = experts[e];
                if (x.NBit is { } p)
                {
                    Assert.True(g.NBit!.IsNBit(e));
                    var m = g.NBit.Matrix(model.Store, e);
                    Assert.Equal(p.Bits, m.Bits);
                    Assert.Equal(p.Packed, m.Packed.ToArray());
                    Assert.Equal(p.RowScales, m.Scales.ToArray());
                    Assert.Equal(p.RowZeros, m.Zeros.ToArray());
                    Assert.Empty(model.Expert(g, e).Codes.ToArray());
                }
                else
                {
                    Assert.False(g.NBit?.IsNBit(e) ?? false);
                    var m = model.Expert(g, e);
                    Assert.Equal(x.Ternary!.Scales, m.Scales.ToArray());
                    Assert.Equal(x.Ternary.Trits, TernaryDecoder.Decode(m.ToEncoded(), model.Dictionary));
                }
            }
        }
        Assert.Equal(model.Store.Names.Count(), CompressedModelVerifier.Verify(model));
        var stats = ModelStatistics.Compute(model);
        Assert.Equal(12L * 9 * 37, stats.ExpertParameters);
        var types = ExpertTypeStatistics.Compute(model);
        Assert.Equal(["ternary", "2", "3", "4"], types.Select(t => t.Type));
        Assert.Equal([6, 1, 4, 1], types.Select(t => t.Matrices));
        Assert.Equal(9 * (PackedNBitMatrix.RowBytesOf(2, 37) + 5) * 8.0 / (9 * 37), types[1].BitsPerParam, 12);
    }

    /// <summary>
    /// <c>inspect</c>'s entropy bound of n-bit codes counts each code relative to its row's zero point: rows whose codes
    /// all sit at their own zero point carry no information (0 bits) whatever the zero points, codes cycling through all
    /// levels carry the full width, and codes alternating between zero and zero + 1 carry 1 bit.
    /// </summary>
    [Fact]
    public void NBitEntropyCountsCodesRelativeToTheRowZeroPoint()
    {
        using var tmp = Paths.Temp();
        int rows = 4, cols = 19;
        PackedNBitMatrix Make(int bits, Func<int, int, int, int> code) // code(row, col, zero)
        {
            var zeros = Enumerable.Range(0, rows).Select(r => (byte)(r % (1 << bits))).ToArray();
            var codes = new byte[rows * cols];
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) codes[r * cols + j] = (byte)(code(r, j, zeros[r]) & ((1 << bits) - 1));
            return new PackedNBitMatrix(bits, rows, cols, PackedNBitMatrix.Pack(codes, bits, rows, cols), Enumerable.Repeat(0.5f, rows).ToArray(), zeros);
        }
        // Bit-packed only: coded, the all-zero-level 2-bit experts would take the coded type (CodedTwoBitTests).
        using (var w = new CompressedModelWriter(tmp.Path, new JsonObject { ["num_experts"] = 2 }, dictionary: DictionaryChoice.Default, codeTwoBit: false))
        {
            w.AddExpertGroup("a", "wi", [StoredExpert.Of(Make(2, (r, j, z) => z)), StoredExpert.Of(Make(2, (r, j, z) => z))]);
            w.AddExpertGroup("b", "wi", [StoredExpert.Of(Make(3, (r, j, z) => z + j)), StoredExpert.Of(Make(3, (r, j, z) => z + j + 8))]);
            w.AddExpertGroup("c", "wi", [StoredExpert.Of(Make(4, (r, j, z) => z + (j & 1))), StoredExpert.Of(Make(4, (r, j, z) => z + 1 - (j & 1)))]);
            w.Complete();
        }
        using var model = CompressedModel.Open(tmp.Path);
        var types = ExpertTypeStatistics.Compute(model).ToDictionary(t => t.Type);
        Assert.Equal(0.0, types["2"].EntropyBits, 12);
        // symbols 0, 1, 2, ... in every row: of 19 columns over 8 levels three symbols appear 3 times, five twice
        var p = new[] { 3, 3, 3, 2, 2, 2, 2, 2 }.Select(c => c / 19.0);
        Assert.Equal(-p.Sum(x => x * Math.Log2(x)), types["3"].EntropyBits, 12);
        Assert.Equal(1.0, types["4"].EntropyBits, 12);
        Assert.Equal(2L * rows * cols, types["4"].SymbolCounts!.Sum());
    }

    /// <summary>
    /// Since the compact layout an n-bit expert stores no ternary scale fields; files written before it (fields for
    /// every expert, (0, 0) for the n-bit ones) still read, with the same scales.
    /// </summary>
    [Fact]
    public void NBitExpertsStoreNoTernaryScalesAndOldFilesStillRead()
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(5);
        int rows = 9, cols = 37;
        var experts = new[] { "ternary", "2", "ternary", "3" }.Select(t => t == "ternary"
            ? StoredExpert.Of(SmallModel.Matrix(rnd, rows, cols))
            : StoredExpert.Of(NBitMatVecTests.RandomMatrix(rnd, int.Parse(t), rows, cols))).ToList();
        var allNBit = Enumerable.Range(0, 4).Select(_ => StoredExpert.Of(NBitMatVecTests.RandomMatrix(rnd, 2, rows, cols))).ToList();
        using (var w = new CompressedModelWriter(tmp.Path, new JsonObject { ["num_experts"] = 4 }, dictionary: DictionaryChoice.Default))
        {
            w.AddExpertGroup("a", "wi", experts);
            w.AddExpertGroup("b", "wi", allNBit);
            w.Complete();
        }
        var path = Path.Combine(tmp.Path, CompressedFormat.WeightsFile);
        ushort[] all;
        using (var model = CompressedModel.Open(tmp.Path))
        {
            var table = model.Store.Info("a.experts.wi.scale_table");
            Assert.Equal(ScaleCoding.FieldBytes(2L * 2 * rows, (int)table.Shape[0]), model.Store.Info("a.experts.wi.scale_fields").ByteLength);
            Assert.Equal(0, model.Store.Info("b.experts.wi.scale_fields").ByteLength);
            all = Enumerable.Range(0, 4).SelectMany(e => model.Expert(model.Group("a", "wi"), e).Scales.ToArray()).ToArray();
            Assert.Equal(experts[2].Ternary!.Scales, all.AsSpan(2 * 2 * rows, 2 * rows).ToArray());
            Assert.All(all.AsSpan(2 * rows, 2 * rows).ToArray(), s => Assert.Equal(0, s));
            Assert.Equal(model.Store.Names.Count(), CompressedModelVerifier.Verify(model));
        }
        // Rewrite group a the old way: its scale table and fields over all four experts.
        var (oldTable, oldFields) = ScaleCoding.Encode(all);
        string legacy = Path.Combine(tmp.Path, "legacy");
        Directory.CreateDirectory(legacy);
        File.Copy(Path.Combine(tmp.Path, CompressedFormat.ConfigFile), Path.Combine(legacy, CompressedFormat.ConfigFile));
        using (var src = SafeTensorsFile.Open(path))
        {
            var meta = src.Metadata.Where(kv => !kv.Key.StartsWith(SafeTensorsWriter.HashPrefix)).ToDictionary(kv => kv.Key, kv => kv.Value);
            using var w = new SafeTensorsWriter(Path.Combine(legacy, CompressedFormat.WeightsFile), meta);
            byte[] Data(string name) => name switch
            {
                "a.experts.wi.scale_table" => System.Runtime.InteropServices.MemoryMarshal.AsBytes(oldTable.AsSpan()).ToArray(),
                "a.experts.wi.scale_fields" => oldFields,
                _ => src.Bytes(name).ToArray(),
            };
            foreach (var name in src.Names) w.Declare(name, src.Info(name).DType, name == "a.experts.wi.scale_table" ? [oldTable.Length]
                : name == "a.experts.wi.scale_fields" ? [oldFields.Length] : src.Info(name).Shape);
            foreach (var name in src.Names) w.Write(Data(name));
            w.Complete();
        }
        using (var model = CompressedModel.Open(legacy))
        {
            Assert.Equal(ScaleCoding.FieldBytes(2L * 4 * rows, oldTable.Length), model.Store.Info("a.experts.wi.scale_fields").ByteLength);
            var again = Enumerable.Range(0, 4).SelectMany(e => model.Expert(model.Group("a", "wi"), e).Scales.ToArray()).ToArray();
            Assert.Equal(all, again);
            Assert.Equal(model.Store.Names.Count(), CompressedModelVerifier.Verify(model));
        }
    }

    [Fact]
    public void BadTypeIsRefusedNamingTheTensor()
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(2);
        using (var w = new CompressedModelWriter(tmp.Path, new JsonObject(), dictionary: DictionaryChoice.Default))
        {
            w.AddExpertGroup("a", "wi", [StoredExpert.Of(SmallModel.Matrix(rnd, 4, 8)), StoredExpert.Of(NBitMatVecTests.RandomMatrix(rnd, 2, 4, 8))]);
            w.Complete();
        }
        var path = Path.Combine(tmp.Path, CompressedFormat.WeightsFile);
        long offset;
        using (var f = SafeTensorsFile.Open(path)) offset = f.Info("a.experts.wi.expert_types").Offset;
        var bytes = File.ReadAllBytes(path);
        bytes[offset + 1] = 6;
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<QmoeException>(() => CompressedModel.Open(tmp.Path));
        Assert.Contains("expert_types", ex.Message);
    }
}
