using Qmoe.Compression;
using Qmoe.Quantization;

namespace Qmoe.Tests.Compression;

/// <summary>The mixed-precision allocation of <c>--target-bits</c> (issue 16) against brute force.</summary>
public class BitAllocationTests
{
    private static readonly string[] Names = ["ternary", "2", "3", "4"];

    private static AllocationProbe Probe(Random rnd, int matrices, bool unitSteps)
    {
        var p = new AllocationProbe { FixedBytes = 3 };
        for (int m = 0; m < matrices; m++)
        {
            // Error falls with bytes; with unit steps the drops shrink (convex), the case where greedy is exact.
            double e = 10 + 90 * rnd.NextDouble();
            long bytes = 10 + rnd.Next(5);
            var cs = new List<AllocationCandidate>();
            double drop = e * (0.3 + 0.4 * rnd.NextDouble());
            for (int k = 0; k < 4; k++)
            {
                cs.Add(new AllocationCandidate(Names[k], e, bytes));
                e -= unitSteps ? drop : e * rnd.NextDouble();
                drop *= unitSteps ? 0.3 + 0.6 * rnd.NextDouble() : 1;
                bytes += unitSteps ? 1 : 1 + rnd.Next(6);
            }
            p.Matrices.Add(new AllocationMatrix($"m{m}", "g", m, 64, 1, cs));
        }
        return p;
    }

    private static double BruteForce(AllocationProbe p, long budget)
    {
        double best = double.PositiveInfinity;
        int n = p.Matrices.Count;
        for (int code = 0; code < 1 << (2 * n); code++)
        {
            long bytes = 0; double err = 0;
            for (int m = 0; m < n; m++)
            {
                var c = p.Matrices[m].Candidates[code >> (2 * m) & 3];
                bytes += c.Bytes; err += c.Error;
            }
            if (bytes <= budget) best = Math.Min(best, err);
        }
        return best;
    }

    private static (long Bytes, double Error) Chosen(AllocationProbe p, AllocationPlan plan) =>
        (p.Matrices.Sum(m => m.Candidates.Single(c => c.Type == QuantTypeInfo.Of(plan.Types[m.Name]).Name).Bytes),
         p.Matrices.Sum(m => m.Candidates.Single(c => c.Type == QuantTypeInfo.Of(plan.Types[m.Name]).Name).Error));

    [Fact]
    public void ConvexUnitStepsMatchBruteForceAndRespectTheBudget()
    {
        var rnd = new Random(7);
        for (int trial = 0; trial < 40; trial++)
        {
            var p = Probe(rnd, 5, unitSteps: true);
            var plan0 = BitAllocation.Plan(p, 8.0 * (p.Matrices.Sum(m => m.Candidates[0].Bytes) + p.FixedBytes) / p.Parameters);
            double target = plan0.MinBits + rnd.NextDouble() * (plan0.MaxBits - plan0.MinBits);
            var plan = BitAllocation.Plan(p, target);
            long budget = (long)Math.Floor(target * p.Parameters / 8.0 + 1e-9) - p.FixedBytes;
            var (bytes, err) = Chosen(p, plan);
            Assert.True(bytes <= budget, $"trial {trial}: {bytes} bytes over the budget {budget}");
            Assert.Equal(BruteForce(p, budget), err, 9);
            Assert.Equal(8.0 * (bytes + p.FixedBytes) / p.Parameters, plan.PredictedBits, 12);
        }
    }

    [Fact]
    public void GeneralCasesRespectTheBudgetAndStayNearTheOptimum()
    {
        var rnd = new Random(3);
        for (int trial = 0; trial < 40; trial++)
        {
            var p = Probe(rnd, 5, unitSteps: false);
            long minBytes = p.Matrices.Sum(m => m.Candidates.Min(c => c.Bytes)), maxBytes = p.Matrices.Sum(m => m.Candidates[3].Bytes);
            long budget = minBytes + rnd.Next((int)(maxBytes - minBytes + 1));
            double target = 8.0 * (budget + p.FixedBytes) / p.Parameters;
            var plan = BitAllocation.Plan(p, target);
            var (bytes, err) = Chosen(p, plan);
            Assert.True(bytes <= budget);
            double opt = BruteForce(p, budget);
            // Greedy on the convex hulls is within one matrix's error range of the optimum (the classic MCKP bound).
            double slack = p.Matrices.Max(m => m.Candidates.Max(c => c.Error) - m.Candidates.Min(c => c.Error));
            Assert.InRange(err, opt - 1e-9, opt + slack);
        }
    }

    [Fact]
    public void TargetOutsideTheAchievableRangeIsOneLineNamingIt()
    {
        var p = Probe(new Random(1), 4, unitSteps: true);
        double min = 8.0 * (p.Matrices.Sum(m => m.Candidates[0].Bytes) + p.FixedBytes) / p.Parameters;
        double max = 8.0 * (p.Matrices.Sum(m => m.Candidates[3].Bytes) + p.FixedBytes) / p.Parameters;
        foreach (var t in new[] { min * 0.9, max * 1.1, double.NaN })
        {
            var ex = Assert.Throws<QmoeException>(() => BitAllocation.Plan(p, t));
            Assert.Contains("achievable range", ex.Message);
            Assert.Contains($"{Math.Ceiling(min * 1000) / 1000:F3}", ex.Message);
            Assert.DoesNotContain('\n', ex.Message);
        }
        Assert.All(BitAllocation.Plan(p, min).Types.Values, t => Assert.Equal(QuantType.Ternary, t));
        Assert.All(BitAllocation.Plan(p, max).Types.Values, t => Assert.Equal(QuantType.Int4, t));
    }

    [Fact]
    public void HullDropsDominatedAndNonConvexCandidates()
    {
        var hull = BitAllocation.Hull([
            new("ternary", 10, 10), new("2", 9.5, 20), new("3", 2, 30), new("4", 3, 40)]);
        // "2" lies above the segment ternary→3 and "4" is dominated (more bytes, more error).
        Assert.Equal(["ternary", "3"], hull.Select(c => c.Type));
    }
}
