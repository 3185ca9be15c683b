using System.Text.Json.Nodes;
using Qmoe.Models;
using Qmoe.Models.DeepseekV3;
using Qmoe.Models.Qwen3Moe;
using Xunit.Abstractions;

namespace Qmoe.Tests.Models;

/// <summary>Synth presets of the new families have the real models' parameter counts, and slices stay valid configs.</summary>
public class FamilySynthTests(ITestOutputHelper output)
{
    private static DeepseekV3Config Deepseek(JsonObject c) => DeepseekV3Config.From(ConfigReader.FromJson(c, "synth"), "");
    private static Qwen3MoeConfig Qwen3(JsonObject c) => Qwen3MoeConfig.From(ConfigReader.FromJson(c, "synth"), "");

    [Fact]
    public void PresetsHaveTheRealParameterCounts()
    {
        long v3 = DeepseekV3Synth.Tensors(Deepseek(DeepseekV3Synth.DeepseekV3())).Sum(t => t.Elements);
        long k2 = DeepseekV3Synth.Tensors(Deepseek(DeepseekV3Synth.KimiK2())).Sum(t => t.Elements);
        long q3 = Qwen3MoeSynth.Tensors(Qwen3(Qwen3MoeSynth.Qwen3_30B_A3B())).Sum(t => t.Elements);
        output.WriteLine($"deepseek-v3 {v3:N0}, kimi-k2 {k2:N0}, qwen3-30b-a3b {q3:N0}");
        Assert.InRange(v3, 670e9, 672e9);   // 671B without the multi-token-prediction layer
        Assert.InRange(k2, 1.02e12, 1.04e12); // "1T total"
        Assert.InRange(q3, 30.4e9, 30.6e9); // 30.5B
    }

    [Fact]
    public void SlicesKeepAMoeLayerAndValidGroups()
    {
        var s = Deepseek(DeepseekV3Synth.Slice(DeepseekV3Synth.DeepseekV3(), layers: 2, experts: 64));
        Assert.Equal(2, s.NumLayers);
        Assert.Equal(1, s.FirstKDenseReplace);
        Assert.True(s.IsSparse(1));
        Assert.Equal((64, 8, 4, 8), (s.NumRoutedExperts, s.NumGroups, s.TopkGroups, s.ExpertsPerToken));
        var k = Deepseek(DeepseekV3Synth.Slice(DeepseekV3Synth.KimiK2(), layers: 3, experts: 6));
        Assert.Equal((6, 1, 1, 6), (k.NumRoutedExperts, k.NumGroups, k.TopkGroups, k.ExpertsPerToken));
        var odd = Deepseek(DeepseekV3Synth.Slice(DeepseekV3Synth.DeepseekV3(), layers: null, experts: 12));
        Assert.Equal((12, 6, 4, 8), (odd.NumRoutedExperts, odd.NumGroups, odd.TopkGroups, odd.ExpertsPerToken));
        var q = Qwen3(Qwen3MoeSynth.Slice(Qwen3MoeSynth.Qwen3_30B_A3B(), layers: 2, experts: 4));
        Assert.Equal((2, 4, 4), (q.NumLayers, q.NumExperts, q.ExpertsPerToken));
    }
}
