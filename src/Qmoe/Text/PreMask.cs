namespace Qmoe.Text;

/// <summary>
/// QMoE's pre-masking (SPEC §4 <c>--premask</c>): token positions left out of the GPTQ Hessians (never out of
/// the forward pass) because their inputs are artificial: encoder positions holding a sentinel, and decoder
/// positions whose next input token (= the label at that position) is a sentinel.
/// Ids ≥ <c>pieceCount</c> are sentinels.
/// </summary>
public static class PreMask
{
    /// <summary>Per encoder position of <paramref name="inputIds"/> [N, L]: true to keep it in the Hessian.</summary>
    public static bool[] Encoder(ReadOnlySpan<int> inputIds, int pieceCount) => KeepNonSentinel(inputIds, pieceCount);

    /// <summary>
    /// Per decoder position of a sample with <paramref name="labels"/> [N, L] (decoder inputs <c>[0] + labels[:-1]</c>):
    /// true to keep it. Position t's next input token is labels[t].
    /// </summary>
    public static bool[] Decoder(ReadOnlySpan<int> labels, int pieceCount) => KeepNonSentinel(labels, pieceCount);

    private static bool[] KeepNonSentinel(ReadOnlySpan<int> ids, int pieceCount)
    {
        var keep = new bool[ids.Length];
        for (int i = 0; i < ids.Length; i++) keep[i] = ids[i] < pieceCount;
        return keep;
    }
}
