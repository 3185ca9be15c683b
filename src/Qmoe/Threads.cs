namespace Qmoe;

/// <summary>
/// The degree of parallelism used by every multi-threaded kernel (0 or unset = all cores). Results never
/// depend on it: work is split so that each output element is computed by exactly one thread.
/// </summary>
public static class Threads
{
    private static int _count;

    /// <summary>Threads to use; values ≤ 0 mean <see cref="Environment.ProcessorCount"/>.</summary>
    public static int Count
    {
        get => _count > 0 ? _count : Environment.ProcessorCount;
        set => _count = value;
    }

    internal static ParallelOptions Options => new() { MaxDegreeOfParallelism = Count };

    /// <summary>Runs body(i) for i in [0, n), on up to <see cref="Count"/> threads; inline when n is 1 or Count is 1.</summary>
    public static void For(int n, Action<int> body)
    {
        if (n <= 0) return;
        if (n == 1 || Count == 1) { for (int i = 0; i < n; i++) body(i); return; }
        Parallel.For(0, n, Options, body);
    }
}
