namespace Qmoe.Models.Moe;

/// <summary>
/// Runs routed tokens through their experts: gathers each expert's kept tokens into one contiguous batch,
/// runs the expert once, and adds weight · expert(x) back to the token's output row. Dropped tokens get zero.
/// </summary>
public static class MoeDispatch
{
    /// <summary>x: [T, dim] (the normed MLP input); output: [T, dim], overwritten.</summary>
    public static void Forward(ReadOnlySpan<float> x, Routing routing, IExperts experts, Span<float> output)
    {
        int dim = experts.Dim;
        output[..(routing.Tokens * dim)].Clear();
        var lists = routing.TokensPerExpert(experts.Count);
        // Experts in ascending order, as HF accumulates (index_add_ per expert): a fixed summation order.
        for (int e = 0; e < experts.Count; e++)
        {
            var toks = lists[e];
            if (toks.Count == 0) continue;
            using var xin = new Numerics.ScratchBuffer((long)toks.Count * dim);
            for (int i = 0; i < toks.Count; i++) x.Slice(toks[i] * dim, dim).CopyTo(xin.Span.Slice(i * dim, dim));
            using var y = new Numerics.ScratchBuffer((long)toks.Count * dim);
            experts.Forward(e, xin.Span, toks.Count, y.Span);
            for (int i = 0; i < toks.Count; i++)
            {
                var dst = output.Slice(toks[i] * dim, dim);
                // dst[c] = src[c] * w + dst[c], multiply then add (not fused): the same bits as the scalar loop.
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(y.Span.Slice(i * dim, dim), WeightOf(routing, toks[i], e), dst, dst);
            }
        }
    }

    private static float WeightOf(Routing r, int token, int expert)
    {
        for (int j = 0; j < r.K; j++)
            if (r.Expert[token * r.K + j] == expert) return r.Weight[token * r.K + j];
        throw new InvalidOperationException("token not routed to expert");
    }
}
