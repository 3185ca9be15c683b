using Xunit.Abstractions;
using System.Text.Json;
using Qmoe.IO;
using Qmoe.Models.Moe;
using Qmoe.Models.Switch;

namespace Qmoe.Tests.Models;

/// <summary>Parity with the PyTorch references of HF's numerics (fixtures' references/MODEL).</summary>
public class SwitchParityTests(ITestOutputHelper output)
{
    public static string ReferenceDir(string model) => model == "switch-tiny-8"
        ? Path.Combine(Paths.TestData, model)
        : Paths.Fixture("references", model) ?? "";

    public static string ModelDir(string model) => model == "switch-tiny-8" ? Paths.TinyModel : Paths.Fixture(model) ?? "";

    private static int[][] Rows(SafeTensorsFile f, string name)
    {
        var t = f.Info(name);
        int n = (int)t.Shape[0], len = (int)t.Shape[1];
        var all = f.ReadInt32(name);
        return Enumerable.Range(0, n).Select(i => all[(i * len)..((i + 1) * len)]).ToArray();
    }

    [Fact] public void TinyLogitsRoutingAndEncoderMatch() => LogitsRoutingAndEncoderMatch("switch-tiny-8");
    [FixtureFact("switch-small-32")] public void SmallLogitsRoutingAndEncoderMatch() => LogitsRoutingAndEncoderMatch("switch-small-32");

    private void LogitsRoutingAndEncoderMatch(string name)
    {
        using var model = SwitchModel.Load(ModelDir(name));
        using var refs = SafeTensorsFile.Open(Path.Combine(ReferenceDir(name), "reference_outputs.safetensors"));
        var input = Rows(refs, "input_ids");
        var decIn = Rows(refs, "decoder_input_ids");

        var routings = new Dictionary<string, Routing>();
        model.RoutingObserver = (b, r) => routings[b.Name] = r;
        var enc = model.Encode(input);
        var refEnc = refs.ReadFloat32("encoder_last_hidden_state");
        Assert.True(MaxAbsDiff(enc, refEnc) <= 1e-3, $"encoder max |Δ| = {MaxAbsDiff(enc, refEnc)}");

        var logits = model.Forward(input, decIn);
        var refLogits = refs.ReadFloat32("logits");
        double maxDiff = MaxAbsDiff(logits, refLogits);
        Assert.True(maxDiff <= 1e-3, $"logits max |Δ| = {maxDiff}");

        int nearTies = 0;
        foreach (var (layer, r) in routings)
        {
            var expected = refs.ReadInt32($"router.{layer}.argmax_expert");
            var margin = refs.ReadFloat32($"router.{layer}.top2_logit_margin");
            var dropped = refs.ReadInt32($"router.{layer}.dropped");
            Assert.Equal(expected.Length, r.Tokens);
            for (int t = 0; t < r.Tokens; t++)
            {
                if (r.Expert[t] != expected[t])
                {
                    Assert.True(margin[t] < 1e-4, $"{layer} token {t}: expert {r.Expert[t]} vs {expected[t]}, margin {margin[t]}");
                    nearTies++;
                    continue;
                }
                Assert.Equal(dropped[t] != 0, !r.Kept[t]);
            }
        }
        var sparse = model.Blocks.Where(b => b.IsSparse).Select(b => b.Name).ToArray();
        Assert.Equal(sparse.OrderBy(x => x), routings.Keys.OrderBy(x => x));
        int routed = routings.Values.Sum(r => r.Tokens);
        Assert.True(nearTies <= routed / 1000 + 1, $"{nearTies} near-ties of {routed} routed tokens");
        output.WriteLine($"{name}: encoder max |Δ| {MaxAbsDiff(enc, refEnc):E2}, logits max |Δ| {maxDiff:E2}, near-ties {nearTies}/{routed}");
    }

    [Fact] public void TinyGreedyGenerationsMatch() => GreedyGenerationsMatch("switch-tiny-8");
    [FixtureFact("switch-small-32")] public void SmallGreedyGenerationsMatch() => GreedyGenerationsMatch("switch-small-32");

    private static void GreedyGenerationsMatch(string name)
    {
        using var model = SwitchModel.Load(ModelDir(name));
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ReferenceDir(name), "generation.json")));
        int maxNew = doc.RootElement.GetProperty("settings").GetProperty("max_new_tokens").GetInt32();
        foreach (var p in doc.RootElement.GetProperty("prompts").EnumerateArray())
        {
            var input = p.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var expected = p.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(expected, SwitchGenerator.Greedy(model, input, maxNew));
        }
    }

    public static double MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(b.Length, a.Length);
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}
