using System.Diagnostics;
using System.Runtime.CompilerServices;

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
/// call costs microseconds instead of a Parallel.For's task setup. The calling thread works too and waits only
/// for blocks actually taken by others, never for a worker to wake up: on a busy machine a late worker simply
/// finds no block left. Reentrant: one job at a time uses the workers; a call made while another job holds them
/// (another thread using the same model) runs its rows on its own thread, and so does a call from a thread that runs
/// alone (<see cref="Qmoe.Threads.Count"/> reads 1 there: a chunk of a server's decode step, a prefill thread).
/// </summary>
public sealed unsafe class RowParallel : IDisposable
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

    private readonly Thread[] _workers;
    private readonly ManualResetEventSlim _wake = new(false);
    // Job fields, owned by the caller holding _busy, stable while any block of the job is unfinished. The body is
    // the caller's stack struct (by address) and the generic function that runs it.
    private int _busy;
    private void* _body;
    private delegate*<void*, int, int, void> _invoke;
    private int _count, _blockRows;
    // (generation: 24 bits, next block: 20 bits, blocks: 20 bits), claimed by compare-exchange, so a claim can
    // only succeed for the current job.
    private long _state;
    private int _completed;
    private volatile bool _disposed;
    private Exception? _error;

    private const int BlockBits = 20;
    private const long BlockMask = (1L << BlockBits) - 1;

    public int Threads { get; }

    /// <summary>Least work (weights, or multiply-adds) worth a block of its own: ~5 µs for the kernels here. A
    /// 96×192 expert of a tiny model (18k weights, ~2 µs) split over two cores took longer than on one (one
    /// sequence of qwen3-moe-tiny: 602 µs per token on 2 threads, 424 on 1).</summary>
    public const long MinBlockWork = 1 << 16;

    /// <summary>Rows per block for <paramref name="rows"/> rows of <paramref name="workPerRow"/> each: about 16 blocks
    /// per thread for balance, at least 4 rows and <see cref="MinBlockWork"/> per block.</summary>
    public int BlockRows(int rows, long workPerRow) =>
        (int)Math.Min(Math.Max(rows, 1), Math.Max(Math.Max(4, rows / (16 * Threads)), (MinBlockWork + workPerRow - 1) / Math.Max(1, workPerRow)));

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
        var boxed = new ClassBody(body);
        For(count, blockRows, ref boxed);
    }

    /// <summary>
    /// As <see cref="For(int, int, IRowBlockBody)"/> for a struct body that carries the call's operands, so kernels keep no
    /// per-call state in fields. <paramref name="body"/> must be a local of the caller (its address is shared with
    /// the workers until this returns).
    /// </summary>
    public void For<TBody>(int count, int blockRows, ref TBody body) where TBody : struct, IRowBlockBody
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count <= 0) return;
        blockRows = Math.Max(blockRows, (int)((count + BlockMask - 1) / BlockMask));
        int blocks = (count + blockRows - 1) / blockRows;
        if (_workers.Length == 0 || blocks == 1 || Qmoe.Threads.Count == 1 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            body.Run(0, count);
            return;
        }
        try
        {
            _body = Unsafe.AsPointer(ref body); _invoke = &Invoke<TBody>;
            _count = count; _blockRows = blockRows; _error = null;
            Volatile.Write(ref _completed, 0);
            long generation = ((Volatile.Read(ref _state) >> (2 * BlockBits)) + 1) & 0xFFFFFF;
            Volatile.Write(ref _state, generation << (2 * BlockBits) | (uint)blocks);
            _wake.Set();
            RunBlocks(generation);
            var spin = new SpinWait();
            while (Volatile.Read(ref _completed) != blocks) spin.SpinOnce(-1);
            _wake.Reset();
            _body = null; _invoke = null;
            if (_error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_error);
        }
        finally { Volatile.Write(ref _busy, 0); }
    }

    private static void Invoke<TBody>(void* body, int start, int end) where TBody : struct, IRowBlockBody =>
        Unsafe.AsRef<TBody>(body).Run(start, end);

    private readonly struct ClassBody(IRowBlockBody body) : IRowBlockBody
    {
        public void Run(int start, int end) => body.Run(start, end);
    }

    private void RunBlocks(long generation)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            if (s >> (2 * BlockBits) != generation) return;
            long next = (s >> BlockBits) & BlockMask, blocks = s & BlockMask;
            if (next >= blocks) return;
            if (Interlocked.CompareExchange(ref _state, s + (1L << BlockBits), s) != s) continue;
            // Block `next` of this generation is ours and unfinished, so the job fields are this job's.
            try
            {
                int start = (int)next * _blockRows;
                _invoke(_body, start, Math.Min(_count, start + _blockRows));
            }
            catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            Interlocked.Increment(ref _completed);
        }
    }

    private void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            // Spin for a while after each job (calls come back to back during inference), then park.
            long deadline = Stopwatch.GetTimestamp() + SpinTicks;
            long generation;
            while ((generation = Volatile.Read(ref _state) >> (2 * BlockBits)) == seen && !_disposed)
            {
                if (Stopwatch.GetTimestamp() > deadline)
                {
                    _wake.Wait(); // may return at once while the caller has not yet reset it: spin again, then park
                    deadline = Stopwatch.GetTimestamp() + SpinTicks;
                }
                else Thread.SpinWait(20);
            }
            if (_disposed) return;
            seen = generation;
            RunBlocks(generation);
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
