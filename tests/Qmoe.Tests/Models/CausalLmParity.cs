using System.Text.Json;
using Qmoe.IO;
using Qmoe.Models.DecoderOnly;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;
using Qmoe.Runtime;

namespace Qmoe.Tests.Models;

/// <summary>
/// Checks of a decoder-only runtime against the fixtures' PyTorch references (references/&lt;model&gt;/, see
/// FAMILIES.md): logits, hidden states, routed expert sets (near-ties excepted), greedy ids, per-block CE.
/// </summary>
public static class CausalLmParity
{
    public static string ReferenceDir(string model) => Paths.Fixture("references", model) ?? "";

    public static SafeTensorsFile OpenReferences(string model) =>
        SafeTensorsFile.Open(Path.Combine(ReferenceDir(model), "reference_outputs.safetensors"));

    public static int[][] Rows(SafeTensorsFile f, string name)
    {
        var t = f.Info(name);
        int n = (int)t.Shape[0], len = (int)t.Shape[1];
        var all = f.ReadInt32(name);
        return Enumerable.Range(0, n).Select(i => all[(i * len)..((i + 1) * len)]).ToArray();
    }

    /// <summary>Logits of the reference blocks within 1e-3; returns the max |Δ| and the logits.</summary>
    public static (double MaxDiff, float[] Logits) Logits(IDecoderOnlyModel model, SafeTensorsFile refs)
    {
        var logits = model.Forward(Rows(refs, "input_ids"));
        double maxDiff = SwitchParityTests.MaxAbsDiff(logits, refs.ReadFloat32("logits"));
        Assert.True(maxDiff <= 1e-3, $"logits max |Δ| = {maxDiff}");
        return (maxDiff, logits);
    }

    /// <summary>
    /// Routed expert sets equal the reference's for every token of every sparse layer, except near-ties (k-th vs
    /// (k+1)-th selection score, or for group routing the group margin, below 1e-4); weights of equal sets within
    /// 1e-4. Returns (near-ties, routed tokens, max weight |Δ|).
    /// </summary>
    public static (int NearTies, int Routed, double WeightDiff) Routing(IReadOnlyDictionary<int, Routing> routings, SafeTensorsFile refs, int expectedLayers)
    {
        Assert.Equal(expectedLayers, routings.Count);
        int nearTies = 0, routed = 0;
        double weightDiff = 0;
        foreach (var (layer, r) in routings)
        {
            var idx = refs.ReadInt32($"router.layer.{layer}.topk_idx");
            var weight = refs.ReadFloat32($"router.layer.{layer}.topk_weight");
            var margin = refs.ReadFloat32($"router.layer.{layer}.topk_margin");
            string groupName = $"router.layer.{layer}.group_margin";
            var groupMargin = refs.Contains(groupName) ? refs.ReadFloat32(groupName) : null;
            int k = r.K;
            Assert.Equal(idx.Length, r.Tokens * k);
            for (int t = 0; t < r.Tokens; t++)
            {
                routed++;
                var mine = r.Expert.AsSpan(t * k, k).ToArray();
                var theirs = idx.AsSpan(t * k, k).ToArray();
                if (mine.Order().SequenceEqual(theirs.Order()))
                {
                    for (int j = 0; j < k; j++)
                        weightDiff = Math.Max(weightDiff, Math.Abs(r.Weight[t * k + j] - weight[t * k + Array.IndexOf(theirs, mine[j])]));
                    continue;
                }
                bool nearTie = margin[t] < 1e-4 || (groupMargin != null && groupMargin[t] < 1e-4);
                Assert.True(nearTie, $"layer {layer} token {t}: experts [{string.Join(',', mine)}] vs [{string.Join(',', theirs)}], margin {margin[t]}");
                nearTies++;
            }
        }
        Assert.True(weightDiff <= 1e-4, $"routing weights max |Δ| = {weightDiff}");
        return (nearTies, routed, weightDiff);
    }

    /// <summary>
    /// The routing of every sparse layer for the batch of <paramref name="sequences"/>, by layer index: the layers run
    /// one at a time as <see cref="IDecoderOnlyModel.ForwardHidden"/> runs them.
    /// </summary>
    public static Dictionary<int, Routing> Routings(IDecoderOnlyModel model, int[][] sequences)
    {
        var batch = new SequenceBatch(sequences.Select(s => s.Length).ToArray());
        var caches = model.NewCaches(sequences.Length, sequences.Max(s => s.Length));
        var h = model.Embed(sequences);
        var routings = new Dictionary<int, Routing>();
        for (int i = 0; i < model.Layers.Count; i++)
        {
            model.Layers[i].SelfAttention(h, batch, caches[i]);
            if (model.Layers[i].FeedForwardLayer(h, batch) is { } r) routings[i] = r;
        }
        return routings;
    }

    /// <summary>The residual stream of block 0 after every layer and the final normed state, within 1e-3; returns the max |Δ|.</summary>
    public static double HiddenStates(IDecoderOnlyModel model, SafeTensorsFile refs)
    {
        var ids = Rows(refs, "input_ids")[0];
        var batch = new SequenceBatch(new[] { ids.Length });
        var caches = model.NewCaches(1, ids.Length);
        var h = model.Embed(new[] { ids });
        double worst = 0;
        for (int i = 0; i <= model.Layers.Count; i++)
        {
            double diff = SwitchParityTests.MaxAbsDiff(h, refs.ReadFloat32($"example0.hidden_states.{i}"));
            Assert.True(diff <= 1e-3, $"hidden state {i} max |Δ| {diff}");
            worst = Math.Max(worst, diff);
            if (i == model.Layers.Count) break;
            model.Layers[i].SelfAttention(h, batch, caches[i]);
            model.Layers[i].FeedForwardLayer(h, batch);
        }
        var final = model.ForwardHidden(new[] { ids }, model.NewCaches(1, ids.Length));
        var last = refs.ReadFloat32("last_hidden_state").AsSpan(0, final.Length).ToArray();
        double lastDiff = SwitchParityTests.MaxAbsDiff(final, last);
        Assert.True(lastDiff <= 1e-3, $"last hidden state max |Δ| {lastDiff}");
        return Math.Max(worst, lastDiff);
    }

    /// <summary>Greedy generation with the KV cache from generation.json's prompt ids gives its output ids exactly.</summary>
    public static int GreedyGenerations(IDecoderOnlyModel model, string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ReferenceDir(name), "generation.json")));
        int maxNew = doc.RootElement.GetProperty("settings").GetProperty("max_new_tokens").GetInt32();
        int prompts = 0;
        foreach (var p in doc.RootElement.GetProperty("prompts").EnumerateArray())
        {
            var input = p.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var expected = p.GetProperty("output_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(expected, DecoderOnlyGenerator.Greedy(model, input, maxNew));
            prompts++;
        }
        return prompts;
    }

    /// <summary>
    /// Mean next-token CE of each reference input block (validation blocks 0..3) against eval_losses.json's
    /// per_block_ce within 1e-4; returns the max |Δ|.
    /// </summary>
    public static double BlockCe(IDecoderOnlyModel model, SafeTensorsFile refs, string name)
    {
        var blocks = Rows(refs, "input_ids");
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(ReferenceDir(name), "eval_losses.json")));
        var expected = doc.RootElement.GetProperty("splits").GetProperty("validation").GetProperty("per_block_ce")
            .EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double worst = 0;
        for (int b = 0; b < blocks.Length; b++)
        {
            var r = CausalEvaluator.Evaluate(model, EvalSet.FromRawBlocks("validation", new[] { blocks[b] }));
            double diff = Math.Abs(r.MeanCe - expected[b]);
            Assert.True(diff <= 1e-4, $"block {b}: CE {r.MeanCe} vs reference {expected[b]}");
            worst = Math.Max(worst, diff);
        }
        return worst;
    }
}
