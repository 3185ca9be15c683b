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
}
