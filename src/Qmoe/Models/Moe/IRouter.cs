namespace Qmoe.Models.Moe;

/// <summary>A sparse layer's router: top-k experts and their output weights for each token.</summary>
public interface IRouter
{
    int NumExperts { get; }
    int K { get; }
    /// <summary>
    /// Routes x [T, dim] given as sequences of lengths <paramref name="seqLengths"/> (summing to T); capacity ≤ 0
    /// means unlimited (routers without a capacity ignore it).
    /// </summary>
    Routing Route(ReadOnlySpan<float> x, IReadOnlyList<int> seqLengths, int capacity);
}
