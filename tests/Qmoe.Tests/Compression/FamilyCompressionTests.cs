using System.Text.Json;
using Qmoe.Codec;
using Qmoe.Compression;
using Qmoe.Models;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.DeepseekV3;
using Qmoe.Models.Moe;
using Qmoe.Models.Qwen3Moe;
using Qmoe.Runtime;
using Qmoe.Tests.Models;
using Xunit.Abstractions;

namespace Qmoe.Tests.Compression;

/// <summary>
/// Compression of the Qwen3-MoE and DeepSeek-V3 fixtures (fast settings: calibration = the reference's token blocks
/// cut in halves): the compressed model, running from its codes, equals its fake-quant twin (CE within 1e-4,
/// identical greedy ids); only routed experts are replaced (dense layers, shared experts, attention stay).
/// </summary>
public class FamilyCompressionTests(ITestOutputHelper output)
{
    private static IDecoderOnlyModel Open(string dir, bool compressed, out IDisposable? experts)
    {
        experts = null;
        var config = ConfigReader.Load(dir);
        var layout = ModelFamilies.For(config).ExpertLayout(config);
        ExpertFactory? factory = null;
        if (compressed)
        {
            var store = new CompressedExperts(dir);
            experts = store;
            factory = (prefix, count) => layout.CreateExperts(count, (e, kind) => store.Weight(prefix, kind, e));
        }
        return config.ModelType == Qwen3MoeFamily.Type
            ? Qwen3MoeModel.Load(dir, factory == null ? null : l => factory(l.MoePrefix!, l.Router!.NumExperts))
            : DeepseekV3Model.Load(dir, factory == null ? null : l => factory(l.MoePrefix!, l.Router!.NumExperts));
    }

    private static int[][] ReferencePrompts(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(CausalLmParity.ReferenceDir(name), "generation.json")));
        return doc.RootElement.GetProperty("prompts").EnumerateArray()
            .Select(p => p.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()).ToArray();
    }

    [FixtureTheory("references", "qwen3-moe-tiny")]
    [InlineData("qwen3-moe-tiny")]
    [InlineData("deepseek-v3-tiny")]
    public void CompressedRunsLikeFakeQuantTwin(string name)
    {
        string model = Paths.Fixture(name)!;
        int[][] blocks;
        using (var refs = CausalLmParity.OpenReferences(name))
            blocks = CausalLmParity.Rows(refs, "input_ids");
        var halves = blocks.SelectMany(b => new[] { b[..64], b[64..] }).ToArray();
        var calib = CalibrationData.Causal(halves, "reference input_ids halves");
        using var tmp = Paths.Temp();
        var options = new CompressionOptions { ChunkSequences = 8 };
        var c = CompressionPipeline.Run(model, tmp.File("c"), calib, options);
        CompressionPipeline.Run(model, tmp.File("f"), calib, options with { FakeQuant = true });

        using (var cm = CompressedModel.Open(tmp.File("c")))
        {
            var stats = ModelStatistics.Compute(cm);
            var config = ModelFamilies.For(ConfigReader.Load(model)).Validate(ConfigReader.Load(model));
            // Only the routed experts are compressed: sparse layers × experts × 3 matrices of 96 × 192.
            Assert.Equal((long)config.SparseLayers * config.NumExperts * 3 * 96 * 192, stats.ExpertParameters);
        }

        IDisposable? store;
        using var compressed = Open(tmp.File("c"), compressed: true, out store);
        using var fake = Open(tmp.File("f"), compressed: false, out var none1);
        using var dense = Open(model, compressed: false, out var none2);
        using var ownedStore = store;
        var set = EvalSet.FromRawBlocks("validation", blocks);
        double cc = CausalEvaluator.Evaluate(compressed, set).MeanCe, fc = CausalEvaluator.Evaluate(fake, set).MeanCe;
        double dc = CausalEvaluator.Evaluate(dense, set).MeanCe;
        Assert.True(Math.Abs(cc - fc) <= 1e-4, $"compressed {cc} vs fake-quant {fc}");
        Assert.NotEqual(dc, fc);
        foreach (var prompt in ReferencePrompts(name))
            Assert.Equal(DecoderOnlyGenerator.Greedy(fake, prompt, 24), DecoderOnlyGenerator.Greedy(compressed, prompt, 24));
        output.WriteLine($"{name}: CE dense {dc:F5}, ternary GPTQ fake-quant {fc:F5}, compressed {cc:F5} (Δ {cc - fc:E1}); {c.ExpertBitsPerParam:F3} bits/param");
    }
}
