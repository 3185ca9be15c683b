using Qmoe.Kernels;

namespace Qmoe.Tests.Kernels;

public class RowParallelTests
{
    private sealed class Counter(int n) : IRowBlockBody
    {
        public readonly int[] Hits = new int[n];
        public int FailAt = -1;
        public void Run(int start, int end)
        {
            for (int i = start; i < end; i++)
            {
                if (i == FailAt) throw new InvalidOperationException("boom");
                Interlocked.Increment(ref Hits[i]);
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void EveryRowRunsExactlyOnceAcrossManyJobs(int threads)
    {
        using var parallel = new RowParallel(threads);
        for (int job = 0; job < 300; job++)
        {
            int n = 1 + job % 97;
            var c = new Counter(n);
            parallel.For(n, 1 + job % 5, c);
            Assert.All(c.Hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void AFailureIsRethrownAndThePoolStaysUsable()
    {
        using var parallel = new RowParallel(2);
        var c = new Counter(100) { FailAt = 57 };
        Assert.Throws<InvalidOperationException>(() => parallel.For(100, 3, c));
        var ok = new Counter(100);
        parallel.For(100, 3, ok);
        Assert.All(ok.Hits, h => Assert.Equal(1, h));
    }

    private sealed class ThreadRecorder : IRowBlockBody
    {
        public readonly System.Collections.Concurrent.ConcurrentBag<int> Threads = new();
        public void Run(int start, int end)
        {
            Threads.Add(Environment.CurrentManagedThreadId);
            Thread.SpinWait(20_000); // long enough that an idle worker would take a block
        }
    }

    [Fact]
    public void AJobFromAThreadRunningAloneStaysOnThatThread()
    {
        using var parallel = new RowParallel(2);
        var rec = new ThreadRecorder();
        int caller = Qmoe.Threads.RunAlone(() =>
        {
            parallel.For(64, 1, rec);
            return Environment.CurrentManagedThreadId;
        });
        Assert.NotEmpty(rec.Threads);
        Assert.All(rec.Threads, t => Assert.Equal(caller, t));
    }

    [Theory]
    [InlineData(96, 192, 2, 96)]     // a tiny model's expert (18k weights): one block, run inline
    [InlineData(192, 96, 2, 192)]
    [InlineData(3072, 768, 2, 96)]   // switch-base-128 wi: 16 blocks per thread, each 74k weights
    [InlineData(768, 3072, 2, 24)]
    [InlineData(14336, 4096, 2, 448)]
    [InlineData(10, 1, 2, 10)]
    public void BlocksHoldAtLeastTheMinimumWork(int rows, int cols, int threads, int expected)
    {
        using var parallel = new RowParallel(threads);
        int blockRows = parallel.BlockRows(rows, cols);
        Assert.Equal(expected, blockRows);
        Assert.True(blockRows == rows || (long)blockRows * cols >= RowParallel.MinBlockWork);
    }
}
