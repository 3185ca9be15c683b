using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

/// <summary>The kernels straight off a compressed model file written by the codec (memory-mapped views).</summary>
public class CompressedModelKernelTests
{
    [Theory]
    [InlineData(CompressedFormat.Version1)]
    [InlineData(CompressedFormat.Version2)]
    public void KernelsMatchTheTritsOnEveryExpertOfAWrittenModel(int formatVersion)
    {
        using var tmp = Paths.Temp();
        using var input = SafeTensorsFile.Open(Path.Combine(Paths.TinyModel, "model.safetensors"));
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(Paths.TinyModel, "config.json")))!;
        var trits = new Dictionary<string, TernaryMatrix>();
        using (var writer = new CompressedModelWriter(tmp.Path, config, dictionary: DictionaryChoice.Default, formatVersion: formatVersion, threads: 1))
        {
            foreach (var group in input.Names.Where(n => n.Contains(".experts.")).GroupBy(n => n[..n.IndexOf(".experts.")]))
                foreach (var kind in new[] { "wi", "wo" })
                {
                    var experts = new List<TernaryMatrix>();
                    for (int e = 0; ; e++)
                    {
                        string name = $"{group.Key}.experts.expert_{e}.{kind}.weight";
                        if (!input.Tensors.TryGetValue(name, out var info)) break;
                        int rows = (int)info.Shape[0], cols = (int)info.Shape[1];
                        var (t, s) = ThresholdTernary.Ternarize(input.ReadFloat32(name), rows, cols, 0.885);
                        experts.Add(trits[$"{group.Key}/{kind}/{e}"] = new TernaryMatrix(rows, cols, t, s));
                    }
                    writer.AddExpertGroup(group.Key, kind, experts);
                }
            writer.Complete();
        }

        using var model = CompressedModel.Open(tmp.Path);
        var reference = new ScalarCompressedMatVec(model.Dictionary.Entries);
        using var parallel = new RowParallel(2);
        var simd = new SimdCompressedMatVec(DecodeTable.FromDictionary(model.Dictionary.Entries), parallel);
        var rnd = new Random(formatVersion);
        int checkedMatrices = 0;
        foreach (var g in model.Groups)
            for (int e = 0; e < g.Experts; e++)
            {
                var m = model.Expert(g, e);
                var w = new CompressedMatrix(m.Codes, m.RowOffsets, m.Scales, m.Rows, m.Cols);
                var t = trits[$"{g.Prefix}/{g.Kind}/{e}"];
                var x = CompressedMatVecTests.RandomVector(rnd, m.Cols);
                var dense = new float[m.Rows];
                for (int r = 0; r < m.Rows; r++)
                {
                    double s = 0;
                    for (int j = 0; j < m.Cols; j++)
                        if (t.Trits[r * m.Cols + j] is var tr && tr != 0) s += BFloat16.ToFloat(t.Scales[2 * r + tr - 1]) * (double)x[j];
                    dense[r] = (float)s;
                }
                var y = new float[m.Rows];
                reference.Multiply(w, x, y);
                CompressedMatVecTests.AssertClose(dense, y);
                simd.Multiply(w, x, y);
                CompressedMatVecTests.AssertClose(dense, y);
                checkedMatrices++;
            }
        Assert.Equal(32, checkedMatrices);
    }
}
