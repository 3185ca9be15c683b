using Qmoe.Models.Switch;

namespace Qmoe.Runtime;

/// <summary>Picks tokens from logits rows by <see cref="SamplingOptions"/>; one instance per sequence (its own generator).</summary>
public sealed class TokenSampler
{
    private readonly SamplingOptions _options;
    private readonly Random? _random;

    public TokenSampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        if (options.Temperature > 0) _random = options.Seed is long seed ? new Random((int)(seed ^ (seed >> 32))) : new Random();
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (_random == null) return SwitchGenerator.ArgMax(logits);
        // Softmax in f64 of logits / T, then the nucleus: the most probable tokens until their mass reaches top_p.
        double max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var p = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++) sum += p[i] = Math.Exp((logits[i] - max) / _options.Temperature);
        var order = Enumerable.Range(0, p.Length).ToArray();
        Array.Sort(order, (a, b) => p[b].CompareTo(p[a]) is var c && c != 0 ? c : a.CompareTo(b));
        double mass = 0;
        int keep = 0;
        while (keep < order.Length && (keep == 0 || mass < _options.TopP * sum)) mass += p[order[keep++]];
        double r = _random.NextDouble() * mass;
        for (int i = 0; i < keep; i++)
        {
            r -= p[order[i]];
            if (r < 0) return order[i];
        }
        return order[keep - 1];
    }
}
