using Qmoe.Models.DecoderOnly;
using Qmoe.Models.DeepseekV3;
using Qmoe.Models.Qwen3Moe;
using Xunit.Abstractions;

namespace Qmoe.Tests.Models;

/// <summary>
/// Parity of the Qwen3-MoE and DeepSeek-V3 runtimes with the fixtures' PyTorch references (references/&lt;model&gt;,
/// HF numerics): logits and routing, hidden states, greedy generations, per-block CE. One theory per check, one
/// case per fixture.
/// </summary>
public class DecoderOnlyParityTests(ITestOutputHelper output)
{
    private static IDecoderOnlyModel Load(string name) => name switch
    {
        "qwen3-moe-tiny" => Qwen3MoeModel.Load(Paths.Fixture(name)!),
        "deepseek-v3-tiny" => DeepseekV3Model.Load(Paths.Fixture(name)!),
        _ => throw new ArgumentException(name),
    };

    [FixtureTheory("references", "qwen3-moe-tiny")]
    [InlineData("qwen3-moe-tiny")]
    [InlineData("deepseek-v3-tiny")]
    public void LogitsAndRoutingMatch(string name)
    {
        using var model = Load(name);
        using var refs = CausalLmParity.OpenReferences(name);
        var (maxDiff, _) = CausalLmParity.Logits(model, refs);
        var routings = CausalLmParity.Routings(model, CausalLmParity.Rows(refs, "input_ids"));
        var (ties, routed, wDiff) = CausalLmParity.Routing(routings, refs, model.Layers.Count(l => l.MoePrefix != null));
        output.WriteLine($"{name}: logits max |Δ| {maxDiff:E2}; expert-set differences at near-ties {ties}/{routed}; weights max |Δ| {wDiff:E2}");
    }

    [FixtureTheory("references", "qwen3-moe-tiny")]
    [InlineData("qwen3-moe-tiny")]
    [InlineData("deepseek-v3-tiny")]
    public void HiddenStatesOfExampleZeroMatch(string name)
    {
        using var model = Load(name);
        using var refs = CausalLmParity.OpenReferences(name);
        output.WriteLine($"{name}: hidden states max |Δ| {CausalLmParity.HiddenStates(model, refs):E2}");
    }

    /// <summary>Greedy generations of generation.json's 4 prompts; every eos id of config.json and generation_config.json stops.</summary>
    [FixtureTheory("references", "qwen3-moe-tiny")]
    [InlineData("qwen3-moe-tiny", new[] { 4096, 4098 })]
    [InlineData("deepseek-v3-tiny", new[] { 4100 })]
    public void GreedyGenerationsMatch(string name, int[] eos)
    {
        using var model = Load(name);
        Assert.Equal(eos, model.EosTokenIds.Order());
        Assert.Equal(4, CausalLmParity.GreedyGenerations(model, name));
    }

    [FixtureTheory("references", "qwen3-moe-tiny")]
    [InlineData("qwen3-moe-tiny")]
    [InlineData("deepseek-v3-tiny")]
    public void BlockCrossEntropyMatchesReference(string name)
    {
        using var model = Load(name);
        using var refs = CausalLmParity.OpenReferences(name);
        output.WriteLine($"{name}: per-block CE max |Δ| {CausalLmParity.BlockCe(model, refs, name):E2}");
    }
}
