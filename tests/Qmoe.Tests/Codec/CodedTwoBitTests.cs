using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Kernels;
using Qmoe.Runtime;
using Qmoe.Tests.Kernels;

namespace Qmoe.Tests.Codec;

/// <summary>
/// Coded 2-bit experts (docs/FORMAT.md, "Coded 2-bit experts"): the writer codes a 2-bit expert with the four-level
/// dictionary where that is smaller than bit-packing, the reader gives the same weights back, the runtime multiplies
/// them as the packed form would, and <c>verify</c> and <c>inspect</c> know the type.
/// </summary>
public class CodedTwoBitTests
{
    /// <summary>A 2-bit matrix with GPTQ's symbol statistics: 60% at the row's zero point, 19% a step either way, 1% the far level.</summary>
    internal static PackedNBitMatrix GptqLike(Random rnd, int rows, int cols)
    {
        var zeros = Enumerable.Range(0, rows).Select(_ => (byte)rnd.Next(1, 3)).ToArray();
        var scales = Enumerable.Range(0, rows).Select(_ => (float)(0.001 + rnd.NextDouble() * 0.1)).ToArray();
        var codes = new byte[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < cols; j++)
            {
                double u = rnd.NextDouble();
                int step = u < 0.60 ? 0 : u < 0.795 ? 1 : u < 0.99 ? -1 : 2;
                codes[r * cols + j] = (byte)((zeros[r] + step) & 3);
            }
        return new PackedNBitMatrix(2, rows, cols, PackedNBitMatrix.Pack(codes, 2, rows, cols), scales, zeros);
    }

    private static float[] Dense(PackedNBitMatrix m)
    {
        var w = new float[m.Rows * m.Cols];
        for (int r = 0; r < m.Rows; r++)
            PackedNBitMatrix.DequantizeRow(m.Packed.AsSpan((int)(r * m.RowBytes), (int)m.RowBytes), 2, m.RowScales[r], m.RowZeros[r], w.AsSpan(r * m.Cols, m.Cols));
        return w;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void CodedExpertsRoundTripAndMultiplyAsPacked(bool rowCounts)
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(21);
        int rows = 9, cols = 37;
        var coded = GptqLike(rnd, rows, cols);
        var random = NBitMatVecTests.RandomMatrix(rnd, 2, rows, cols); // uniform codes: coding them is no smaller
        var experts = new[]
        {
            StoredExpert.Of(SmallModel.Matrix(rnd, rows, cols)), StoredExpert.Of(coded), StoredExpert.Of(random),
            StoredExpert.Of(NBitMatVecTests.RandomMatrix(rnd, 3, rows, cols)),
        };
        using (var w = new CompressedModelWriter(tmp.Path, new JsonObject { ["num_experts"] = 4 }, dictionary: DictionaryChoice.Default, storeRowCounts: rowCounts))
        {
            w.AddExpertGroup("a", "wi", experts);
            w.AddExpertGroup("b", "wi", Enumerable.Range(0, 4).Select(_ => StoredExpert.Of(GptqLike(rnd, rows, cols))).ToList());
            w.Complete();
            Assert.NotNull(w.FourLevelDictionary);
        }
        using (var model = CompressedModel.Open(tmp.Path))
        {
            var g = model.Group("a", "wi");
            Assert.Equal(new byte[] { 0, NBitGroup.CodedTwoBitType, 2, 3 }, g.NBit!.Types.ToArray());
            Assert.Equal(4, model.FourLevelDictionary!.Levels);
            Assert.Equal("mixed", (string?)model.Config["quantization_config"]!["bits"]);
            // The codes decode to the symbols (code − zero) mod 4, and the grid is the packed one's.
            var m = model.Expert(g, 1);
            Assert.Equal(coded.RowScales, m.GridScales.ToArray());
            Assert.Equal(coded.RowZeros, m.GridZeros.ToArray());
            var symbols = TernaryDecoder.Decode(m.ToEncoded(), model.FourLevelDictionary);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++)
                    Assert.Equal(PackedNBitMatrix.Code(coded.Packed.AsSpan((int)(r * coded.RowBytes)), 2, j), (symbols[r * cols + j] + coded.RowZeros[r]) & 3);
            Assert.Equal(0, model.Store.Info("a.experts.wi.packed").ByteLength - (PackedNBitMatrix.RowBytesOf(2, cols) + PackedNBitMatrix.RowBytesOf(3, cols)) * rows);
            Assert.Equal(model.Store.Names.Count(), CompressedModelVerifier.Verify(model));
            var types = ExpertTypeStatistics.Compute(model);
            Assert.Equal(["ternary", "2", "3", "2 coded"], types.Select(t => t.Type));
            Assert.Equal([1, 1, 1, 5], types.Select(t => t.Matrices));
            Assert.True(types[3].CodeBitsPerParam < 2, $"coded 2-bit: {types[3].CodeBitsPerParam} code bits per weight");
            double zeroLevel = types[3].SymbolCounts![0] / (double)types[3].SymbolCounts!.Sum();
            Assert.InRange(zeroLevel, 0.5, 0.7); // the experts' 60% at the zero level, counted from the decoded codes
        }
        // The runtime: a coded expert multiplies as its packed twin's dequantized weights do, at every batch.
        using var experts2 = new CompressedExperts(tmp.Path);
        var weight = experts2.Weight("a", "wi", 1);
        var dense = Dense(coded);
        foreach (int n in new[] { 1, 3, 8, 40 })
        {
            var x = CompressedMatVecTests.RandomVector(rnd, n * cols);
            var y = new float[n * rows];
            weight.Multiply(x, n, y);
            var expected = new float[n * rows];
            for (int i = 0; i < n; i++)
                for (int r = 0; r < rows; r++)
                {
                    double s = 0;
                    for (int j = 0; j < cols; j++) s += dense[r * cols + j] * (double)x[i * cols + j];
                    expected[i * rows + r] = (float)s;
                }
            CompressedMatVecTests.AssertClose(expected, y);
        }
    }

    [Fact]
    public void CodingCanBeSwitchedOffAndAMissingFourLevelDictionaryIsRefused()
    {
        using var tmp = Paths.Temp();
        var rnd = new Random(4);
        var experts = Enumerable.Range(0, 2).Select(_ => StoredExpert.Of(GptqLike(rnd, 6, 40))).ToList();
        string plain = Path.Combine(tmp.Path, "plain"), coded = Path.Combine(tmp.Path, "coded");
        using (var w = new CompressedModelWriter(plain, new JsonObject(), dictionary: DictionaryChoice.Default, codeTwoBit: false))
        {
            w.AddExpertGroup("a", "wi", experts);
            w.Complete();
            Assert.Null(w.FourLevelDictionary);
        }
        using (var model = CompressedModel.Open(plain))
        {
            Assert.Equal(new byte[] { 2, 2 }, model.Group("a", "wi").NBit!.Types.ToArray());
            Assert.Null(model.FourLevelDictionary);
            Assert.False(model.Store.Contains(CompressedFormat.FourLevelDictionaryTensor));
            Assert.Equal("2", (string?)model.Config["quantization_config"]!["bits"]);
        }
        using (var w = new CompressedModelWriter(coded, new JsonObject(), dictionary: DictionaryChoice.Default))
        {
            w.AddExpertGroup("a", "wi", experts);
            w.Complete();
        }
        using (var model = CompressedModel.Open(coded))
            Assert.Equal("2", (string?)model.Config["quantization_config"]!["bits"]);
        // The same file without its four-level dictionary: refused by name.
        string path = Path.Combine(coded, CompressedFormat.WeightsFile), stripped = path + ".tmp";
        using (var src = SafeTensorsFile.Open(path))
        {
            var meta = src.Metadata.Where(kv => !kv.Key.StartsWith(SafeTensorsWriter.HashPrefix)).ToDictionary(kv => kv.Key, kv => kv.Value);
            using var w = new SafeTensorsWriter(stripped, meta);
            var names = src.Names.Where(n => n != CompressedFormat.FourLevelDictionaryTensor).ToList();
            foreach (var name in names) w.Declare(name, src.Info(name).DType, src.Info(name).Shape);
            foreach (var name in names) w.Write(src.Bytes(name));
            w.Complete();
        }
        File.Move(stripped, path, overwrite: true);
        var e = Assert.Throws<QmoeException>(() => CompressedModel.Open(coded));
        Assert.Contains(CompressedFormat.FourLevelDictionaryTensor, e.Message);
    }
}
