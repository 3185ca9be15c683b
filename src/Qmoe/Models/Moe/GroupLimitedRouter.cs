using Qmoe.Models.Layers;

namespace Qmoe.Models.Moe;

/// <summary>
/// DeepSeek-V3 / Kimi-K2 routing (HF <c>DeepseekV3TopkRouter</c>, topk_method noaux_tc), all in f32:
/// s = sigmoid(x·Wᵀ); selection score c = s + e_score_correction_bias (the bias only selects); experts form
/// n_group equal groups scored by the sum of their two largest c; the topk_group best groups stay and the
/// other experts' c is set to 0.0 (HF's masked_fill, not −inf); the k largest c are chosen (in descending
/// order; ties to the lower index); weights = s of the chosen, divided by (Σ + 1e-20) when norm_topk_prob,
/// times routed_scaling_factor.
/// </summary>
public sealed class GroupLimitedRouter : IRouter
{
    private readonly Matrix _weight;        // [experts, dim]
    private readonly float[] _bias;         // [experts]

    public int NumExperts => _weight.Rows;
    public int K { get; }
    public int Groups { get; }
    public int TopkGroups { get; }
    public bool NormTopkProb { get; }
    public float ScalingFactor { get; }

    public GroupLimitedRouter(Matrix weight, float[] correctionBias, int k, int groups, int topkGroups, bool normTopkProb, float scalingFactor)
    {
        int e = weight.Rows;
        if (correctionBias.Length != e) throw new ArgumentException("bias length");
        if (groups < 1 || e % groups != 0 || e / groups < 2) throw new ArgumentException("experts must form n_group groups of at least 2");
        if (topkGroups < 1 || topkGroups > groups) throw new ArgumentException("topk_group out of range");
        if (k < 1 || k > topkGroups * (e / groups)) throw new ArgumentException("k out of range");
        _weight = weight; _bias = correctionBias; K = k; Groups = groups; TopkGroups = topkGroups;
        NormTopkProb = normTopkProb; ScalingFactor = scalingFactor;
    }

    public Routing Route(ReadOnlySpan<float> x, IReadOnlyList<int> seqLengths, int capacity)
    {
        int tokens = seqLengths.Sum(), E = NumExperts;
        var logits = Linear.Forward(x, tokens, _weight);
        var r = new Routing(tokens, K, logits);
        var s = new float[E];
        var choice = new float[E];
        for (int t = 0; t < tokens; t++)
        {
            SelectionScores(logits.AsSpan(t * E, E), s, choice);
            float total = 0;
            for (int j = 0; j < K; j++)
            {
                int best = -1;
                for (int e = 0; e < E; e++)
                {
                    if (float.IsNegativeInfinity(choice[e])) continue; // already chosen
                    if (best < 0 || choice[e] > choice[best]) best = e;
                }
                choice[best] = float.NegativeInfinity;
                r.Expert[t * K + j] = best;
                r.Weight[t * K + j] = s[best];
                r.Kept[t * K + j] = true;
                total += s[best];
            }
            for (int j = 0; j < K; j++)
            {
                ref float w = ref r.Weight[t * K + j];
                if (NormTopkProb) w /= total + 1e-20f;
                w *= ScalingFactor;
            }
        }
        return r;
    }

    /// <summary>s = sigmoid(logits); choice = s + bias, 0.0 outside the topk_group best groups (what HF's topk sees).</summary>
    public void SelectionScores(ReadOnlySpan<float> logits, Span<float> s, Span<float> choice)
    {
        int E = NumExperts, size = E / Groups;
        for (int e = 0; e < E; e++)
        {
            s[e] = 1f / (1f + MathF.Exp(-logits[e]));
            choice[e] = s[e] + _bias[e];
        }
        if (TopkGroups == Groups) return;
        Span<float> groupScore = stackalloc float[Groups];
        for (int g = 0; g < Groups; g++)
        {
            float first = float.NegativeInfinity, second = float.NegativeInfinity;
            foreach (float c in choice.Slice(g * size, size))
            {
                if (c > first) { second = first; first = c; }
                else if (c > second) second = c;
            }
            groupScore[g] = first + second;
        }
        Span<bool> kept = stackalloc bool[Groups];
        for (int j = 0; j < TopkGroups; j++)
        {
            int best = -1;
            for (int g = 0; g < Groups; g++)
                if (!kept[g] && (best < 0 || groupScore[g] > groupScore[best])) best = g;
            kept[best] = true;
        }
        for (int g = 0; g < Groups; g++)
            if (!kept[g]) choice.Slice(g * size, size).Clear();
    }
}
