namespace Qmoe.Numerics;

/// <summary>Thread-count convention of the numerics layer: 0 (or less) means all cores.</summary>
public static class Threads
{
    /// <summary>The number of worker threads to use for a requested count (0 = <see cref="Environment.ProcessorCount"/>).</summary>
    public static int Resolve(int threads) => threads <= 0 ? Environment.ProcessorCount : threads;

    /// <summary>
    /// Runs body(0..count-1) on up to <paramref name="threads"/> threads (inline when one suffices); an exception of
    /// a body is rethrown as itself, not wrapped in an AggregateException.
    /// </summary>
    internal static void For(int count, int threads, Action<int> body)
    {
        threads = Math.Min(Resolve(threads), count);
        if (threads <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }
}
