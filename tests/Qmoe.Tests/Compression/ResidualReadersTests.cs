using Qmoe.Compression;
using Qmoe.IO;
using Qmoe.Tests.Cli;

namespace Qmoe.Tests.Compression;

/// <summary><c>--proxy next-layer</c>: G, the Gram matrix of the rows that read a sparse layer's output next.</summary>
public class ResidualReadersTests
{
    [FixtureFact("mixtral-tiny-8", "config.json")]
    public void GramSumsTheNextLayersNormedReaderRows()
    {
        using var store = TensorStore.Open(Paths.Fixture("mixtral-tiny-8")!);
        const int d = 192;
        // Layer 0's readers: layer 1's q/k/v (input norm), router and experts' w1/w3 (post-attention norm); reference in double.
        var g = ResidualReaders.Gram(store, "model.layers.0.block_sparse_moe", d)!;
        var reference = new double[d * d];
        void Add(string name, string norm)
        {
            var n = store.ReadFloat32($"model.layers.1.{norm}.weight", d);
            var t = store.Info(name);
            var w = new float[t.Shape[0] * d];
            store.ReadWeight(name, (int)t.Shape[0], d, w);
            for (long r = 0; r < t.Shape[0]; r++)
                for (int i = 0; i < d; i++)
                    for (int j = 0; j < d; j++) reference[i * d + j] += (double)w[r * d + i] * n[i] * w[r * d + j] * n[j];
        }
        foreach (var p in new[] { "q_proj", "k_proj", "v_proj" }) Add($"model.layers.1.self_attn.{p}.weight", "input_layernorm");
        Add("model.layers.1.block_sparse_moe.gate.weight", "post_attention_layernorm");
        for (int e = 0; e < 8; e++)
            foreach (var k in new[] { "w1", "w3" }) Add($"model.layers.1.block_sparse_moe.experts.{e}.{k}.weight", "post_attention_layernorm");
        double trace = Enumerable.Range(0, d).Sum(i => reference[i * d + i]);
        for (int i = 0; i < d * d; i++) Assert.True(Math.Abs(g[i] - reference[i] * d / trace) <= 1e-4 * (1 + Math.Abs(reference[i] * d / trace)), $"G[{i}]");
        // The last layer's reader is the head after the final norm; an encoder-decoder prefix has no such naming.
        Assert.Equal(d, Enumerable.Range(0, d).Sum(i => (double)ResidualReaders.Gram(store, "model.layers.3.block_sparse_moe", d)![i * d + i]), 2);
        Assert.Null(ResidualReaders.Gram(store, "encoder.block.1.layer.1.mlp", d));
    }

    /// <summary>A next layer with 20 routed experts (d = 4): the first 16 are read, each counted 20/16 times; shared
    /// matrices once; o_proj and the experts' w2 never.</summary>
    [Fact]
    public void ManyExpertsAreSampledAndScaled()
    {
        const int d = 4, experts = 20;
        var rnd = new Random(3);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rnd.NextDouble() * 2 - 1)).ToArray();
        var tensors = new List<(string, DType, long[], byte[])>();
        var values = new Dictionary<string, float[]>();
        void T(string name, params long[] shape)
        {
            var v = R((int)shape.Aggregate(1L, (a, b) => a * b));
            values[name] = v;
            tensors.Add((name, DType.F32, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray()));
        }
        T("model.layers.1.input_layernorm.weight", d); T("model.layers.1.post_attention_layernorm.weight", d);
        T("model.layers.1.self_attn.q_proj.weight", 3, d); T("model.layers.1.self_attn.o_proj.weight", d, d);
        T("model.layers.1.mlp.gate.weight", experts, d);
        for (int e = 0; e < experts; e++) { T($"model.layers.1.mlp.experts.{e}.up_proj.weight", 2, d); T($"model.layers.1.mlp.experts.{e}.down_proj.weight", d, 2); }
        T("model.norm.weight", d); T("lm_head.weight", 5, d);
        using var tmp = Paths.Temp();
        Directory.CreateDirectory(tmp.File("m"));
        SafeTensorsWriter.WriteAll(Path.Combine(tmp.File("m"), "model.safetensors"), tensors);
        using var store = TensorStore.Open(tmp.File("m"));
        var reference = new double[d * d];
        void Add(string name, string norm, double weight)
        {
            var w = values[name]; var n = values[$"model.layers.1.{norm}.weight"];
            for (int r = 0; r < w.Length / d; r++)
                for (int i = 0; i < d; i++)
                    for (int j = 0; j < d; j++) reference[i * d + j] += weight * w[r * d + i] * n[i] * w[r * d + j] * n[j];
        }
        Add("model.layers.1.self_attn.q_proj.weight", "input_layernorm", 1);
        Add("model.layers.1.mlp.gate.weight", "post_attention_layernorm", 1);
        for (int e = 0; e < ResidualReaders.SampledExperts; e++) Add($"model.layers.1.mlp.experts.{e}.up_proj.weight", "post_attention_layernorm", experts / 16.0);
        double trace = Enumerable.Range(0, d).Sum(i => reference[i * d + i]);
        var g = ResidualReaders.Gram(store, "model.layers.0.mlp", d)!;
        for (int i = 0; i < d * d; i++) Assert.Equal(reference[i] * d / trace, g[i], 4);
    }

    [Fact]
    public void TheProxyIsRefusedWhereItDoesNotApply()
    {
        using var tmp = Paths.Temp();
        var noTarget = CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", tmp.File("a"), "--calib-text", Paths.CalibrationText,
            "--samples", "4", "--proxy", "next-layer");
        Assert.NotEqual(0, noTarget.ExitCode);
        Assert.Contains("--proxy applies to --target-bits only", noTarget.Stderr);
        var switchModel = CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", tmp.File("b"), "--calib-text", Paths.CalibrationText,
            "--samples", "4", "--target-bits", "1.5", "--proxy", "next-layer");
        Assert.NotEqual(0, switchModel.ExitCode);
        Assert.Single(switchModel.Stderr.Trim().Split('\n'), l => l.StartsWith("error") && l.Contains("--proxy next-layer"));
        var bad = CliProcess.Run("compress", "--model", Paths.TinyModel, "--out", tmp.File("c"), "--calib-text", Paths.CalibrationText,
            "--samples", "4", "--target-bits", "1.5", "--proxy", "hessian");
        Assert.Contains("--proxy hessian: expected output or next-layer", bad.Stderr);
    }
}
