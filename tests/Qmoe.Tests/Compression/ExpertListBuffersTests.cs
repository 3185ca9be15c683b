using Qmoe.Compression;
using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Tests.Compression;

public class ExpertListBuffersTests
{
    /// <summary>Each list entry keeps its token's gate weight (the allocation probe weights errors by it), also after the cap.</summary>
    [Fact]
    public void EntriesKeepTheirGateWeightsThroughTheCap()
    {
        using var tmp = Paths.Temp();
        var budget = new MemoryBudget(1L << 20, tmp.File("spill"));
        using var input = new ActivationBuffer(6, 4, budget, "x");
        var lists = new ExpertListBuffers(3, input);
        // 6 tokens, top-2: token t goes to experts t % 3 and (t + 1) % 3; token 4's second choice was dropped.
        static float First(int t) => 0.1f * (t + 1);
        static float Second(int t) => 1 - 0.1f * (t + 1);
        var routing = new Routing(6, 2, new float[6 * 3]);
        for (int t = 0; t < 6; t++)
        {
            routing.Expert[2 * t] = t % 3; routing.Weight[2 * t] = First(t); routing.Kept[2 * t] = true;
            routing.Expert[2 * t + 1] = (t + 1) % 3; routing.Weight[2 * t + 1] = Second(t); routing.Kept[2 * t + 1] = t != 4;
        }
        lists.Append(routing, new SequenceBatch([6]), row0: 0, hessianMask: null, seq0: 0);
        // In token order. Expert 0: tokens 0 (first choice), 2 (second), 3 (first), 5 (second); expert 2: 1 (second), 2 (first), 5 (first).
        Assert.Equal(4, lists.Count(0));
        Assert.Equal(new[] { First(0), Second(2), First(3), Second(5) }, lists.Gates(0, 0, 4).ToArray());
        Assert.Equal(3, lists.Count(2));
        Assert.Equal(new[] { Second(1), First(2), First(5) }, lists.Gates(2, 0, 3).ToArray());
        // 11 entries, mean 11/3: a cap factor of 0.5 keeps ⌈11/6⌉ = 2 per expert, the first ones, with their own weights.
        lists.Cap(0.5);
        Assert.Equal(2, lists.Count(2));
        Assert.Equal(new[] { Second(1), First(2) }, lists.Gates(2, 0, 2).ToArray());
    }
}
