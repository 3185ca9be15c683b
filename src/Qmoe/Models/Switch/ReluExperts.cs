using Qmoe.Models.Layers;
using Qmoe.Models.Moe;

namespace Qmoe.Models.Switch;

/// <summary>Switch experts: y = wo · relu(wi · x), wi [d_ff, d_model], wo [d_model, d_ff] per expert (dense or compressed).</summary>
public sealed class ReluExperts : IExperts
{
    private readonly IWeightMatrix[] _wi, _wo;

    public ReluExperts(IWeightMatrix[] wi, IWeightMatrix[] wo)
    {
        if (wi.Length != wo.Length || wi.Length == 0) throw new ArgumentException("wi/wo count");
        _wi = wi; _wo = wo;
    }

    public int Count => _wi.Length;
    public int Dim => _wo[0].Rows;
    public IWeightMatrix Wi(int e) => _wi[e];
    public IWeightMatrix Wo(int e) => _wo[e];

    public void Forward(int expert, ReadOnlySpan<float> x, int n, Span<float> y) =>
        FeedForward.Relu(x, n, _wi[expert], _wo[expert], y);
}
