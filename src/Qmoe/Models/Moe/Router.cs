using Qmoe.Models.Layers;

namespace Qmoe.Models.Moe;

/// <summary>
/// Linear router (no bias) with f32 softmax and top-k selection; ties resolve to the lowest expert index.
/// Switch: k = 1, weight = the top probability, and a per-sequence expert capacity (tokens beyond the first
/// <c>capacity</c> routed to an expert, in position order, are dropped). Mixtral: k = 2, weights renormalised
/// over the chosen k, no capacity.
/// </summary>
public sealed class Router : IRouter
{
    private readonly Matrix _classifier; // [experts, dim]

    public int NumExperts => _classifier.Rows;
    public int K { get; }
    public bool Renormalize { get; }

    public Router(Matrix classifier, int k, bool renormalize)
    {
        if (k < 1 || k > classifier.Rows) throw new ArgumentException("k out of range");
        _classifier = classifier; K = k; Renormalize = renormalize;
    }

    /// <summary>Router logits [T, experts] for inputs x [T, dim].</summary>
    public float[] Logits(ReadOnlySpan<float> x, int tokens) => Linear.Forward(x, tokens, _classifier);

    /// <summary>
    /// Routes x [T, dim], given as sequences of lengths <paramref name="seqLengths"/> (summing to T); capacity ≤ 0
    /// means unlimited. Capacity counts restart for every sequence, as in HF (per forward call).
    /// </summary>
    public Routing Route(ReadOnlySpan<float> x, IReadOnlyList<int> seqLengths, int capacity)
    {
        int tokens = seqLengths.Sum(), E = NumExperts;
        var logits = Logits(x, tokens);
        var r = new Routing(tokens, K, logits);
        var probs = new float[E];
        var counts = new int[E];
        int t = 0;
        foreach (int len in seqLengths)
        {
            Array.Clear(counts);
            for (int end = t + len; t < end; t++)
            {
                Softmax(logits.AsSpan(t * E, E), probs);
                SelectTopK(probs, t, r);
                for (int j = 0; j < K; j++)
                {
                    int slot = t * K + j;
                    r.Kept[slot] = capacity <= 0 || ++counts[r.Expert[slot]] <= capacity;
                }
            }
        }
        return r;
    }

    private void SelectTopK(float[] probs, int t, Routing r)
    {
        float total = 0;
        for (int j = 0; j < K; j++)
        {
            int best = -1;
            for (int e = 0; e < probs.Length; e++)
            {
                if (IsChosen(r, t, j, e)) continue;
                if (best < 0 || probs[e] > probs[best]) best = e;
            }
            r.Expert[t * K + j] = best;
            r.Weight[t * K + j] = probs[best];
            total += probs[best];
        }
        if (Renormalize)
            for (int j = 0; j < K; j++) r.Weight[t * K + j] /= total;
    }

    private static bool IsChosen(Routing r, int t, int upTo, int e)
    {
        for (int j = 0; j < upTo; j++) if (r.Expert[t * r.K + j] == e) return true;
        return false;
    }

    /// <summary>f32 softmax with max subtraction.</summary>
    public static void Softmax(ReadOnlySpan<float> logits, Span<float> probs)
    {
        float max = float.NegativeInfinity;
        foreach (var l in logits) max = MathF.Max(max, l);
        float sum = 0;
        for (int i = 0; i < logits.Length; i++) { probs[i] = MathF.Exp(logits[i] - max); sum += probs[i]; }
        for (int i = 0; i < logits.Length; i++) probs[i] /= sum;
    }
}
