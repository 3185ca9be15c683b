using Qmoe.Quantization;

namespace Qmoe.Compression;

/// <summary>The outcome of <see cref="BitAllocation.Plan"/>: a type per expert matrix and what the probe predicts for it.</summary>
/// <param name="Types">checkpoint tensor name → type.</param>
/// <param name="TargetBits">the requested expert bits/param.</param>
/// <param name="PredictedBits">expert bits/param of the chosen types by the probe's byte counts.</param>
/// <param name="PredictedError">sum of the chosen candidates' errors.</param>
/// <param name="MinBits">the smallest achievable (every matrix at its smallest candidate).</param>
/// <param name="MaxBits">every matrix at 4 bits.</param>
public sealed record AllocationPlan(IReadOnlyDictionary<string, QuantType> Types, double TargetBits, double PredictedBits,
    double PredictedError, double MinBits, double MaxBits)
{
    /// <summary>Matrices per type name.</summary>
    public IReadOnlyDictionary<string, int> Counts => Types.Values.GroupBy(t => QuantTypeInfo.Of(t).Name)
        .OrderBy(g => (int)QuantTypeInfo.Parse(g.Key).Type).ToDictionary(g => g.Key, g => g.Count());
}

/// <summary>
/// Mixed-precision allocation for <c>compress --target-bits B</c> (issue 16): choose one candidate per expert matrix so
/// that the bytes (plus the fixed bytes) stay within B bits per expert parameter and the summed error proxy is least.
/// A multiple-choice knapsack, solved the standard way: per matrix the candidates on the lower convex hull of
/// (bytes, error), all matrices start at their smallest, and upgrades along the hulls are taken in order of error
/// saved per byte while they fit; then single upgrades that still fit are taken greedily (hull steps skipped
/// because the next was too big). Optimal for the convex relaxation; tested against brute force on small cases.
/// </summary>
public static class BitAllocation
{
    public static AllocationPlan Plan(AllocationProbe probe, double targetBits)
    {
        long parameters = probe.Parameters;
        double BitsOf(long bytes) => 8.0 * (bytes + probe.FixedBytes) / parameters;
        var ms = probe.Matrices;
        long minBytes = ms.Sum(m => m.Candidates.Min(c => c.Bytes));
        long maxBytes = ms.Sum(m => m.Candidates.Single(c => c.Type == QuantTypeInfo.Of(QuantType.Int4).Name).Bytes);
        double min = BitsOf(minBytes), max = BitsOf(maxBytes);
        if (!(targetBits >= min && targetBits <= max))
            throw new QmoeException($"--target-bits {targetBits}: outside the achievable range {Math.Ceiling(min * 1000) / 1000:F3}–{Math.Floor(max * 1000) / 1000:F3} expert bits/param (all ternary to all 4-bit)");
        long budget = (long)Math.Floor(targetBits * parameters / 8.0 + 1e-9) - probe.FixedBytes;

        // Per matrix: candidates sorted by bytes, then the lower convex hull (error strictly falling, slopes rising).
        var hulls = ms.Select(m => Hull(m.Candidates)).ToList();
        var choice = new int[ms.Count]; // index into the matrix's hull
        long used = hulls.Sum(h => h[0].Bytes);
        var steps = new PriorityQueue<(int M, int To), double>();
        void Push(int m)
        {
            var h = hulls[m];
            int k = choice[m];
            if (k + 1 < h.Count) steps.Enqueue((m, k + 1), -(h[k].Error - h[k + 1].Error) / (h[k + 1].Bytes - h[k].Bytes));
        }
        for (int m = 0; m < ms.Count; m++) Push(m);
        while (steps.TryDequeue(out var s, out _))
        {
            var h = hulls[s.M];
            long extra = h[s.To].Bytes - h[choice[s.M]].Bytes;
            if (used + extra > budget) continue; // this matrix stays; the filling pass below may still upgrade it
            used += extra;
            choice[s.M] = s.To;
            Push(s.M);
        }
        // Fill what is left: the best remaining single upgrade (any candidate, not only hull steps) that fits.
        var chosen = ms.Select((m, i) => hulls[i][choice[i]]).ToArray();
        while (true)
        {
            int best = -1; AllocationCandidate? to = null; double gain = 0;
            for (int i = 0; i < ms.Count; i++)
                foreach (var c in ms[i].Candidates)
                {
                    long extra = c.Bytes - chosen[i].Bytes;
                    double g = chosen[i].Error - c.Error;
                    if (g > gain && used + extra <= budget) { best = i; to = c; gain = g; }
                }
            if (best < 0) break;
            used += to!.Bytes - chosen[best].Bytes;
            chosen[best] = to;
        }
        var types = new Dictionary<string, QuantType>(StringComparer.Ordinal);
        for (int i = 0; i < ms.Count; i++) types[ms[i].Name] = QuantTypeInfo.Parse(chosen[i].Type).Type;
        return new AllocationPlan(types, targetBits, BitsOf(used), chosen.Sum(c => c.Error), min, max);
    }

    /// <summary>The candidates on the lower convex hull of (bytes, error), bytes ascending; dominated ones dropped.</summary>
    internal static List<AllocationCandidate> Hull(IReadOnlyList<AllocationCandidate> candidates)
    {
        var sorted = candidates.OrderBy(c => c.Bytes).ThenBy(c => c.Error).ToList();
        var hull = new List<AllocationCandidate>();
        foreach (var c in sorted)
        {
            if (hull.Count > 0 && c.Error >= hull[^1].Error) continue; // more bytes, no less error
            // pop while the last point lies on or above the segment from the one before it to c
            while (hull.Count >= 2)
            {
                var a = hull[^2]; var b = hull[^1];
                double cross = (double)(b.Bytes - a.Bytes) * (c.Error - a.Error) - (b.Error - a.Error) * (double)(c.Bytes - a.Bytes);
                if (cross <= 0) hull.RemoveAt(hull.Count - 1); else break;
            }
            hull.Add(c);
        }
        return hull;
    }
}
