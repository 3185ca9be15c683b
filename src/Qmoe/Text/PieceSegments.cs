namespace Qmoe.Text;

/// <summary>
/// A segmentation of normalized text into pieces, in order: each segment's piece id (−1 when the text is no
/// piece: an unknown character, resolved by the tokenizer) and its [Start, Start + Length) range in chars.
/// Reused across calls.
/// </summary>
internal sealed class PieceSegments
{
    public int[] Ids = new int[64], Starts = new int[64], Lengths = new int[64];
    public int Count;

    public void Clear() => Count = 0;

    public void Add(int id, int start, int length)
    {
        if (Count == Ids.Length)
        {
            Array.Resize(ref Ids, 2 * Count);
            Array.Resize(ref Starts, 2 * Count);
            Array.Resize(ref Lengths, 2 * Count);
        }
        Ids[Count] = id; Starts[Count] = start; Lengths[Count] = length;
        Count++;
    }

    /// <summary>Reverses the segments in place (for segmenters that emit back to front).</summary>
    public void Reverse()
    {
        Array.Reverse(Ids, 0, Count);
        Array.Reverse(Starts, 0, Count);
        Array.Reverse(Lengths, 0, Count);
    }
}

/// <summary>A SentencePiece model algorithm: normalized text → pieces.</summary>
internal interface IPieceSegmenter
{
    /// <summary>Appends the segmentation of <paramref name="normalized"/> to <paramref name="output"/> (cleared first).</summary>
    void Segment(ReadOnlySpan<char> normalized, PieceSegments output);
}
