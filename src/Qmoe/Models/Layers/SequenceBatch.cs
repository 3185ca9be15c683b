namespace Qmoe.Models.Layers;

/// <summary>
/// Several sequences processed together: their token rows are concatenated into one [Tokens, dim] buffer so
/// that linear layers run as one large product; attention and routing capacity stay per sequence.
/// </summary>
public sealed class SequenceBatch
{
    public int[] Lengths { get; }
    /// <summary>First row of each sequence.</summary>
    public int[] Offsets { get; }
    public int Tokens { get; }
    public int Count => Lengths.Length;

    public SequenceBatch(IReadOnlyList<int> lengths)
    {
        Lengths = lengths.ToArray();
        Offsets = new int[Lengths.Length];
        int t = 0;
        for (int i = 0; i < Lengths.Length; i++) { Offsets[i] = t; t += Lengths[i]; }
        Tokens = t;
    }
}
