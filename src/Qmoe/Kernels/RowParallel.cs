namespace Qmoe.Kernels;

/// <summary>Work split into row blocks by <see cref="RowParallel"/>.</summary>
public interface IRowBlockBody
{
    /// <summary>Processes rows [start, end); called concurrently for disjoint ranges.</summary>
    void Run(int start, int end);
}

/// <summary>
/// A fixed set of worker threads for kernels that are called thousands of times per second (one matvec per
/// expert per token): dispatch allocates nothing and workers spin briefly between jobs before parking, so a
/// call costs microseconds instead of a Parallel.For's task setup. The calling thread works too.
/// One job at a time per instance.
/// </summary>
public sealed class RowParallel : IDisposable
{
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 5000; // 200 µs

    private readonly Thread[] _workers;
    private readonly ManualResetEventSlim _wake = new(false);
    private IRowBlockBody? _body;
    private int _count, _blockRows;
    private int _nextBlock, _blocks;
    private int _busy;          // workers still inside the current job
    private long _generation;   // bumped per job
    private volatile bool _disposed;
    private Exception? _error;

    public int Threads { get; }

    /// <param name="threads">total threads including the caller (≥ 1)</param>
    public RowParallel(int threads)
    {
        if (threads < 1) throw new ArgumentOutOfRangeException(nameof(threads), threads, "threads must be ≥ 1");
        Threads = threads;
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"qmoe-kernel-{i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Runs body over rows [0, count) in blocks of <paramref name="blockRows"/>, on all threads; rethrows the first failure.</summary>
    public void For(int count, int blockRows, IRowBlockBody body)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count <= 0) return;
        blockRows = Math.Max(1, blockRows);
        int blocks = (count + blockRows - 1) / blockRows;
        if (_workers.Length == 0 || blocks == 1) { body.Run(0, count); return; }

        _body = body; _count = count; _blockRows = blockRows; _blocks = blocks; _nextBlock = 0; _error = null;
        Volatile.Write(ref _busy, _workers.Length);
        Interlocked.Increment(ref _generation);
        _wake.Set();
        RunBlocks();
        var spin = new SpinWait();
        while (Volatile.Read(ref _busy) != 0) spin.SpinOnce(-1);
        _wake.Reset(); // set again only with the next generation
        _body = null;
        if (_error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_error);
    }

    private void RunBlocks()
    {
        try
        {
            int b;
            while ((b = Interlocked.Increment(ref _nextBlock) - 1) < _blocks)
            {
                int start = b * _blockRows;
                _body!.Run(start, Math.Min(_count, start + _blockRows));
            }
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _error, e, null);
            Volatile.Write(ref _nextBlock, _blocks); // others stop taking blocks
        }
    }

    private void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            // Spin for a while after each job (calls come back to back during inference), then park.
            long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref _generation) == seen && !_disposed)
            {
                if (System.Diagnostics.Stopwatch.GetTimestamp() > deadline)
                {
                    _wake.Wait(); // may return at once while the caller has not yet reset it: spin again, then park
                    deadline = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
                }
                else Thread.SpinWait(20);
            }
            if (_disposed) return;
            seen = Volatile.Read(ref _generation);
            RunBlocks();
            Interlocked.Decrement(ref _busy);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _wake.Set();
        foreach (var t in _workers) t.Join();
        _wake.Dispose();
    }
}
