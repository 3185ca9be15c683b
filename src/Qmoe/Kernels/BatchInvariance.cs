namespace Qmoe.Kernels;

/// <summary>
/// A thread's request that a batched product give each input vector exactly (bitwise) what it would get alone: the
/// decode step of several sequences, whose rows must equal each sequence stepped alone (<see cref="Runtime.IBatchDecoder"/>).
/// On AVX2 / AVX-512 the compressed kernel runs batches of 1–2 through its window loop and batches of 3–8 through the slot
/// loop, which sums in another order; inside <see cref="Enter"/>'s scope every vector of a batch takes the window loop (up
/// to four vectors per decode on AVX-512, two on AVX2). Prefill and evaluation stay outside: there a batch's vectors are
/// never compared with lone ones, and the slot loop is faster for larger batches. Other kernels are batch-invariant on every path.
/// </summary>
public static class BatchInvariance
{
    [ThreadStatic] private static bool _on;

    /// <summary>Whether the calling thread is inside a <see cref="Enter"/> scope.</summary>
    public static bool IsOn => _on;

    /// <summary>Batch-invariant kernels on the calling thread until the scope is disposed (<c>using (BatchInvariance.Enter()) ...</c>).</summary>
    public static Scope Enter()
    {
        var scope = new Scope(_on);
        _on = true;
        return scope;
    }

    /// <summary>Restores the calling thread's previous setting.</summary>
    public readonly struct Scope(bool previous) : IDisposable
    {
        public void Dispose() => _on = previous;
    }
}
