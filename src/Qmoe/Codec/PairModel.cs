namespace Qmoe.Codec;

/// <summary>
/// Probabilities of the 9 pair symbols s = t[2i] + 3·t[2i+1] (trits 0 = zero, 1 = row min, 2 = row max) that a
/// dictionary is built for. <see cref="Iid"/> is QMoE's model (independent trits, P(zero) = p0, P(min) = P(max));
/// <see cref="Fit"/> takes the measured pair frequencies of the weights being written. Four-level codes (2-bit
/// experts, docs/FORMAT.md) have 16 pair symbols s = t[2i] + 4·t[2i+1] over symbols 0..3.
/// </summary>
public sealed class PairModel
{
    /// <summary>Pair symbols of the ternary code.</summary>
    public const int Symbols = 9;

    /// <summary>QMoE's default zero probability for ternary GPTQ weights.</summary>
    public const double DefaultP0 = 0.885;

    private readonly double[] _p;

    /// <summary>P(s) for s = 0..8 (or 0..15); all positive, summing to 1.</summary>
    public ReadOnlySpan<double> Probabilities => _p;

    private PairModel(double[] p) { _p = p; }

    /// <summary>Independent trits with P(zero) = <paramref name="p0"/> and P(min) = P(max) = (1 − p0)/2.</summary>
    public static PairModel Iid(double p0)
    {
        if (!(p0 > 0 && p0 < 1)) throw new QmoeException($"pair model: P(zero) = {p0} must lie strictly between 0 and 1");
        double q = (1 - p0) / 2;
        ReadOnlySpan<double> trit = [p0, q, q];
        var p = new double[Symbols];
        for (int s = 0; s < Symbols; s++) p[s] = trit[s % 3] * trit[s / 3];
        return new PairModel(p);
    }

    /// <summary>
    /// The measured pair frequencies (<paramref name="pairCounts"/>: 9 counts, or 16 for four levels), with half a count
    /// added to every symbol so that unseen symbols keep a finite cost.
    /// </summary>
    public static PairModel Fit(ReadOnlySpan<long> pairCounts)
    {
        if (pairCounts.Length is not (9 or 16)) throw new ArgumentException("need 9 or 16 pair counts", nameof(pairCounts));
        double total = 0;
        foreach (var c in pairCounts)
        {
            if (c < 0) throw new ArgumentException("negative pair count", nameof(pairCounts));
            total += c + 0.5;
        }
        var p = new double[pairCounts.Length];
        for (int s = 0; s < p.Length; s++) p[s] = (pairCounts[s] + 0.5) / total;
        return new PairModel(p);
    }

    /// <summary>
    /// Integer costs −log2 P(s) · 2^32, rounded: sums over a sequence are exact and independent of summation order,
    /// so equal-probability sequences tie exactly and the tie rule decides (see <see cref="CodeDictionary.Build(ReadOnlySpan{long}, string?)"/>; the costs are what a file may record instead of the dictionary).
    /// </summary>
    internal long[] IntegerCosts()
    {
        var cost = new long[_p.Length];
        for (int s = 0; s < cost.Length; s++) cost[s] = (long)Math.Round(-Math.Log2(_p[s]) * 4294967296.0);
        return cost;
    }
}
