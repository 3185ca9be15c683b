using Qmoe.Models.Moe;
using Qmoe.Models.DeepseekV3;
using Xunit.Abstractions;

namespace Qmoe.Tests.Models;

/// <summary>Parity of the DeepSeek-V3 runtime with the PyTorch references (fixtures' references/deepseek-v3-tiny, HF numerics).</summary>
public class DeepseekV3ParityTests(ITestOutputHelper output)
{
    private const string Name = "deepseek-v3-tiny";
    private static string ModelDir => Paths.Fixture(Name) ?? "";

    [FixtureFact("references", Name)]
    public void LogitsAndRoutingMatch()
    {
        using var model = DeepseekV3Model.Load(ModelDir);
        using var refs = CausalLmParity.OpenReferences(Name);
        var routings = new Dictionary<int, Routing>();
        model.RoutingObserver = (l, r) => routings[l.Index] = r;
        var (maxDiff, _) = CausalLmParity.Logits(model, refs);
        var (ties, routed, wDiff) = CausalLmParity.Routing(routings, refs, model.Layers.Count(l => l.IsSparse));
        output.WriteLine($"{Name}: logits max |Δ| {maxDiff:E2}; expert-set differences at near-ties {ties}/{routed}; weights max |Δ| {wDiff:E2}");
    }

    [FixtureFact("references", Name)]
    public void HiddenStatesOfExampleZeroMatch()
    {
        using var model = DeepseekV3Model.Load(ModelDir);
        using var refs = CausalLmParity.OpenReferences(Name);
        output.WriteLine($"hidden states max |Δ| {CausalLmParity.HiddenStates(model, refs):E2}");
    }

    [FixtureFact("references", Name)]
    public void GreedyGenerationsMatch()
    {
        using var model = DeepseekV3Model.Load(ModelDir);
        Assert.Equal(new[] { 4100 }, model.EosTokenIds);
        Assert.Equal(4, CausalLmParity.GreedyGenerations(model, Name));
    }

    [FixtureFact("references", Name)]
    public void BlockCrossEntropyMatchesReference()
    {
        using var model = DeepseekV3Model.Load(ModelDir);
        using var refs = CausalLmParity.OpenReferences(Name);
        output.WriteLine($"per-block CE max |Δ| {CausalLmParity.BlockCe(model, refs, Name):E2}");
    }
}
