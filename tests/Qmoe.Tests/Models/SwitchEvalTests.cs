using System.Text.Json;
using Qmoe.Models.Switch;
using Qmoe.Runtime;

namespace Qmoe.Tests.Models;

public class SwitchEvalTests
{
    private static double ReferenceCe(string model, string split)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(SwitchParityTests.ReferenceDir(model), "eval_losses.json")));
        return doc.RootElement.GetProperty("eval_sets").GetProperty(split).GetProperty("mean_ce").GetDouble();
    }

    [Theory]
    [InlineData("validation")]
    [InlineData("ood_man")]
    public void TinyEvalMatchesReference(string split) => EvalMatches("switch-tiny-8", split);

    [FixtureTheory("switch-small-32")]
    [InlineData("validation")]
    [InlineData("ood_man")]
    public void SmallEvalMatchesReference(string split) => EvalMatches("switch-small-32", split);

    private static void EvalMatches(string name, string split)
    {
        using var model = SwitchModel.Load(SwitchParityTests.ModelDir(name));
        var set = EvalSet.Load(Paths.EvalSets, split, model.Config.VocabSize);
        var r = SwitchEvaluator.Evaluate(model, set);
        Assert.Equal(256, r.Examples);
        Assert.Equal(256 * 29, r.Tokens);
        double expected = ReferenceCe(name, split);
        Assert.True(Math.Abs(r.MeanCe - expected) <= 1e-4, $"{name} {split}: CE {r.MeanCe} vs reference {expected}");
    }
}
