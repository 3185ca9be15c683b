using System.Text.Json;
using Qmoe.IO;
using Qmoe.Models.Mixtral;
using Qmoe.Models.Moe;
using Qmoe.Runtime;
using Xunit.Abstractions;

namespace Qmoe.Tests.Models;

/// <summary>Parity of the Mixtral runtime with the PyTorch references (fixtures' references/mixtral-tiny-8, HF numerics).</summary>
public class MixtralParityTests(ITestOutputHelper output)
{
    private const string Name = "mixtral-tiny-8";
    private static string ModelDir => Paths.Fixture(Name) ?? "";
    private static string ReferenceDir => Paths.Fixture("references", Name) ?? "";

    private static int[][] Rows(SafeTensorsFile f, string name)
    {
        var t = f.Info(name);
        int n = (int)t.Shape[0], len = (int)t.Shape[1];
        var all = f.ReadInt32(name);
        return Enumerable.Range(0, n).Select(i => all[(i * len)..((i + 1) * len)]).ToArray();
    }

    [FixtureFact("references", Name)]
    public void LogitsAndRoutingMatch()
    {
        using var model = MixtralModel.Load(ModelDir);
        using var refs = SafeTensorsFile.Open(Path.Combine(ReferenceDir, "reference_outputs.safetensors"));
        var input = Rows(refs, "input_ids");
        var routings = new Dictionary<int, Routing>();
        model.RoutingObserver = (l, r) => routings[l.Index] = r;

        var logits = model.Forward(input);
        double maxDiff = SwitchParityTests.MaxAbsDiff(logits, refs.ReadFloat32("logits"));
        Assert.True(maxDiff <= 1e-3, $"logits max |Δ| = {maxDiff}");

        int nearTies = 0, routed = 0;
        double worstTieMargin = 0;
        Assert.Equal(Enumerable.Range(0, model.Config.NumLayers), routings.Keys.Order());
        foreach (var (layer, r) in routings)
        {
            var expected = refs.ReadInt32($"router.layer.{layer}.topk_experts");
            var margin = refs.ReadFloat32($"router.layer.{layer}.topk_margin");
            Assert.Equal(expected.Length, r.Tokens * 2);
            for (int t = 0; t < r.Tokens; t++)
            {
                routed++;
                var mine = new[] { r.Expert[2 * t], r.Expert[2 * t + 1] }.Order();
                var theirs = new[] { expected[2 * t], expected[2 * t + 1] }.Order();
                if (mine.SequenceEqual(theirs)) continue;
                Assert.True(margin[t] < 1e-4, $"layer {layer} token {t}: experts [{string.Join(',', mine)}] vs [{string.Join(',', theirs)}], margin {margin[t]}");
                nearTies++;
                worstTieMargin = Math.Max(worstTieMargin, margin[t]);
            }
        }
        Assert.True(nearTies <= routed / 1000 + 1, $"{nearTies} near-ties of {routed} routed tokens");
        output.WriteLine($"{Name}: logits max |Δ| {maxDiff:E2}, top-2 set differences (near-ties) {nearTies}/{routed}, largest margin among them {worstTieMargin:E2}");
    }

    [FixtureFact("references", Name)]
    public void HiddenStatesOfExampleZeroMatch()
    {
        using var model = MixtralModel.Load(ModelDir);
        using var refs = SafeTensorsFile.Open(Path.Combine(ReferenceDir, "reference_outputs.safetensors"));
        var ids = Rows(refs, "input_ids")[0];
        var batch = new Qmoe.Models.Layers.SequenceBatch(new[] { ids.Length });
        var caches = model.NewCaches(1, ids.Length);
        var h = model.Embed(new[] { ids });
        for (int i = 0; i < model.Layers.Length; i++)
        {
            Assert.True(SwitchParityTests.MaxAbsDiff(h, refs.ReadFloat32($"example0.hidden_states.{i}")) <= 1e-3, $"hidden state {i}");
            model.Layer(i, h, batch, caches[i]);
        }
        model.FinalNorm(h, ids.Length);
        var last = refs.ReadFloat32("last_hidden_state").AsSpan(0, h.Length).ToArray();
        Assert.True(SwitchParityTests.MaxAbsDiff(h, last) <= 1e-3, $"last hidden state max |Δ| {SwitchParityTests.MaxAbsDiff(h, last)}");
    }

    [FixtureFact("references", Name)]
    public void GreedyGenerationsMatch()
    {
        using var model = ModelLoader.Open(ModelDir);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ReferenceDir, "generation.json")));
        int maxNew = doc.RootElement.GetProperty("settings").GetProperty("max_new_tokens").GetInt32();
        foreach (var p in doc.RootElement.GetProperty("prompts").EnumerateArray())
        {
            var input = p.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var expected = p.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var r = Generation.Run(model, p.GetProperty("prompt").GetString()!, maxNew);
            Assert.Equal(input, r.InputIds);
            Assert.Equal(expected, r.OutputIds);
        }
    }

    [FixtureTheory("references", Name)]
    [InlineData("validation")]
    [InlineData("ood_man")]
    public void EvalMatchesReference(string split)
    {
        using var model = ModelLoader.Open(ModelDir);
        var set = EvalSet.Load(Paths.EvalSets, split, model.VocabSize, causal: true);
        var r = model.Evaluate(set);
        Assert.Equal(256, r.Examples);
        Assert.Equal(256 * 140, r.Tokens);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ReferenceDir, "eval_losses.json")));
        double expected = doc.RootElement.GetProperty("eval_sets").GetProperty(split).GetProperty("mean_ce").GetDouble();
        Assert.True(Math.Abs(r.MeanCe - expected) <= 1e-4, $"{split}: CE {r.MeanCe} vs reference {expected}");
        output.WriteLine($"{split}: CE {r.MeanCe:F6} vs reference {expected:F6} (Δ {r.MeanCe - expected:E2})");
    }
}
