namespace Qmoe;

/// <summary>
/// The degree of parallelism of every multi-threaded kernel. <see cref="Count"/> is the process-wide default
/// (the CLI's <c>--threads</c>; 0 = all cores); APIs that take a thread count treat ≤ 0 as that default.
/// Results never depend on it: work is split so that each output element is computed by exactly one thread.
/// </summary>
public static class Threads
{
    private static int _count;
    // > 0 inside a body of ForEachAlone: kernels called there run on that thread only.
    [ThreadStatic] private static int _local;

    /// <summary>Threads to use by default; setting a value ≤ 0 means <see cref="Environment.ProcessorCount"/>.
    /// Inside a body of <see cref="ForEachAlone"/> it reads 1.</summary>
    public static int Count
    {
        get => _local > 0 ? _local : _count > 0 ? _count : Environment.ProcessorCount;
        set => _count = value;
    }

    /// <summary>A requested thread count, with ≤ 0 meaning <see cref="Count"/>.</summary>
    public static int Resolve(int threads) => threads > 0 ? threads : Count;

    /// <summary>Runs body(i) for i in [0, n) on up to <see cref="Count"/> threads (inline when one suffices).</summary>
    public static void For(int n, Action<int> body) => For(n, 0, body);

    /// <summary>
    /// Runs body(i) for i in [0, n) on up to <see cref="Count"/> threads, each body alone on its thread: every
    /// multi-threaded kernel it calls runs inline (<see cref="Count"/> reads 1 there). Coarse parallelism for many
    /// small independent jobs (e.g. the sequences of a decode step), where splitting each small kernel would cost
    /// more in synchronisation than it gains. Results are unchanged (they never depend on the thread count).
    /// </summary>
    public static void ForEachAlone(int n, Action<int> body) => For(n, 0, i => RunAlone(() => body(i)));

    /// <summary>Runs <paramref name="body"/> alone on the calling thread: every multi-threaded kernel it calls runs
    /// inline (<see cref="Count"/> reads 1 there). For a thread of its own beside others (a server's prefill thread).</summary>
    public static T RunAlone<T>(Func<T> body)
    {
        int saved = _local;
        _local = 1;
        try { return body(); }
        finally { _local = saved; }
    }

    /// <summary>As <see cref="RunAlone{T}"/>, for a body without a result.</summary>
    public static void RunAlone(Action body) => RunAlone(() => { body(); return 0; });

    /// <summary>Runs body(i) for i in [0, n) on up to <paramref name="threads"/> threads (≤ 0: <see cref="Count"/>).</summary>
    public static void For(int n, int threads, Action<int> body)
    {
        threads = Math.Min(Resolve(threads), n);
        if (threads <= 1)
        {
            for (int i = 0; i < n; i++) body(i);
            return;
        }
        try
        {
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            // Rethrow a body's exception as itself (e.g. a QmoeException naming the bad tensor), not wrapped.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }
}
