using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Qmoe.Compression;
using Qmoe.IO;
using Qmoe.Models.DeepseekV3;
using Qmoe.Runtime;
using Qmoe.Tests.Models;

namespace Qmoe.Tests.Compression;

/// <summary>
/// An FP8 checkpoint as DeepSeek-V3 / Kimi-K2 ship them (every projection F8_E4M3 with 128×128 <c>weight_scale_inv</c>
/// blocks, quantization_config fp8), made from deepseek-v3-tiny, against its twin that stores the same weights
/// dequantized in f32: the two run and compress identically. The FP8 weights are dequantized lazily and dropped
/// after every chunk of a compression pass, so this also covers re-dequantization.
/// </summary>
public class Fp8CheckpointTests
{
    private const int Block = 128;

    [FixtureFact("references", "deepseek-v3-tiny")]
    public void Fp8CheckpointRunsAndCompressesLikeItsDequantizedTwin()
    {
        using var tmp = Paths.Temp();
        string fp8 = tmp.File("fp8"), twin = tmp.File("twin");
        WriteFp8AndTwin(Paths.Fixture("deepseek-v3-tiny")!, fp8, twin);

        int[][] blocks;
        using (var refs = CausalLmParity.OpenReferences("deepseek-v3-tiny"))
            blocks = CausalLmParity.Rows(refs, "input_ids");
        var set = EvalSet.FromRawBlocks("validation", blocks);
        double Ce(string dir)
        {
            using var m = DeepseekV3Model.Load(dir);
            return CausalEvaluator.Evaluate(m, set).MeanCe;
        }
        Assert.Equal(Ce(twin), Ce(fp8));

        var calib = CalibrationData.Causal(blocks.Select(b => b[..64]).ToArray(), "reference input_ids halves");
        var options = new CompressionOptions { ChunkSequences = 4, FakeQuant = true };
        CompressionPipeline.Run(fp8, tmp.File("fp8-q"), calib, options);
        CompressionPipeline.Run(twin, tmp.File("twin-q"), calib, options);
        Assert.Equal(Ce(tmp.File("twin-q")), Ce(tmp.File("fp8-q")));
        Assert.NotEqual(Ce(twin), Ce(tmp.File("twin-q")));
    }

    /// <summary>Writes <paramref name="fp8"/> (projections as block-scaled e4m3) and <paramref name="twin"/> (their dequantized values in f32).</summary>
    private static void WriteFp8AndTwin(string source, string fp8, string twin)
    {
        Directory.CreateDirectory(fp8);
        Directory.CreateDirectory(twin);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        File.WriteAllText(Path.Combine(twin, "config.json"), config.ToJsonString());
        config["quantization_config"] = new JsonObject
        {
            ["quant_method"] = "fp8", ["fmt"] = "e4m3", ["activation_scheme"] = "dynamic", ["weight_block_size"] = new JsonArray(Block, Block),
        };
        File.WriteAllText(Path.Combine(fp8, "config.json"), config.ToJsonString());
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            foreach (var dir in new[] { fp8, twin })
                File.Copy(Path.Combine(source, f), Path.Combine(dir, f));

        using var store = TensorStore.Open(source);
        var fp8Tensors = new List<(string, DType, long[], byte[])>();
        var twinTensors = new List<(string, DType, long[], byte[])>();
        foreach (var name in store.Names.Order(StringComparer.Ordinal))
        {
            var t = store.Info(name);
            var w = store.ReadFloat32(name);
            if (!(name.StartsWith("model.layers.", StringComparison.Ordinal) && name.EndsWith("_proj.weight", StringComparison.Ordinal)))
            {
                fp8Tensors.Add((name, DType.F32, t.Shape, MemoryMarshal.AsBytes(w.AsSpan()).ToArray()));
                twinTensors.Add((name, DType.F32, t.Shape, MemoryMarshal.AsBytes(w.AsSpan()).ToArray()));
                continue;
            }
            int rows = (int)t.Shape[0], cols = (int)t.Shape[1];
            var (codes, scales) = Quantize(w, rows, cols);
            var dequantized = new float[w.Length];
            Fp8E4M3.DequantizeBlocks(codes, rows, cols, scales, Block, Block, dequantized);
            fp8Tensors.Add((name, DType.F8_E4M3, t.Shape, codes));
            fp8Tensors.Add((name + "_scale_inv", DType.F32, [(rows + Block - 1) / Block, (cols + Block - 1) / Block],
                MemoryMarshal.AsBytes(scales.AsSpan()).ToArray()));
            twinTensors.Add((name, DType.F32, t.Shape, MemoryMarshal.AsBytes(dequantized.AsSpan()).ToArray()));
        }
        SafeTensorsWriter.WriteAll(Path.Combine(fp8, "model.safetensors"), fp8Tensors);
        SafeTensorsWriter.WriteAll(Path.Combine(twin, "model.safetensors"), twinTensors);
    }

    /// <summary>Per 128×128 block: scale = max|w| / 448 (e4m3's largest value), codes = the nearest e4m3 value of w / scale.</summary>
    private static (byte[] Codes, float[] Scales) Quantize(float[] w, int rows, int cols)
    {
        int br = (rows + Block - 1) / Block, bc = (cols + Block - 1) / Block;
        var scales = new float[br * bc];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                scales[i / Block * bc + j / Block] = Math.Max(scales[i / Block * bc + j / Block], Math.Abs(w[i * cols + j]) / 448f);
        for (int s = 0; s < scales.Length; s++) if (scales[s] == 0) scales[s] = 1;
        var values = Enumerable.Range(0, 256).Select(b => (Code: (byte)b, Value: Fp8E4M3.ToFloat((byte)b))).Where(v => !float.IsNaN(v.Value)).ToArray();
        var codes = new byte[w.Length];
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                float x = w[i * cols + j] / scales[i / Block * bc + j / Block];
                codes[i * cols + j] = values.MinBy(v => Math.Abs(v.Value - x)).Code;
            }
        return (codes, scales);
    }
}
