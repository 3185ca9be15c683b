using Qmoe.Numerics;

namespace Qmoe.Tests.Numerics;

public class GemmTests
{
    public static IEnumerable<object[]> Shapes() =>
    [
        [1, 1, 1], [3, 5, 7], [17, 33, 9], [8, 32, 256], [37, 65, 300], [193, 71, 31], [64, 129, 257], [5, 300, 2],
    ];

    [Theory, MemberData(nameof(Shapes))]
    public void MatchesReferenceForAllTransposes(int m, int n, int k)
    {
        var rng = new Random(m * 1000 + n * 10 + k);
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                // Leading dimensions larger than needed, to exercise strides.
                int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                var a = RandomMatrices.Uniform(rng, (ta ? k : m) * lda);
                var b = RandomMatrices.Uniform(rng, (tb ? n : k) * ldb);
                var c0 = RandomMatrices.Uniform(rng, m * ldc);
                var expected = (float[])c0.Clone();
                NumericsReference.Gemm(ta, tb, m, n, k, -0.75f, a, lda, b, ldb, 0.5f, expected, ldc);
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    var c = (float[])c0.Clone();
                    Gemm.Multiply(ta, tb, m, n, k, -0.75f, a, lda, b, ldb, 0.5f, c, ldc, threads);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++)
                            if (!(Math.Abs(c[i * ldc + j] - expected[i * ldc + j]) <= 2e-6f * k + 1e-6f))
                                Assert.Fail($"ta={ta} tb={tb} threads={threads} ({i},{j}): {c[i * ldc + j]} vs {expected[i * ldc + j]}");
                    // Padding columns of C untouched.
                    for (int i = 0; i < m; i++) Assert.Equal(c0[i * ldc + n], c[i * ldc + n]);
                }
            }
    }

    [Fact]
    public void ResultIsIndependentOfThreadCount()
    {
        var rng = new Random(5);
        int m = 301, n = 270, k = 530; // more than one KC block, odd edges
        var a = RandomMatrices.Uniform(rng, m * k);
        var b = RandomMatrices.Uniform(rng, k * n);
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        Gemm.Multiply(false, true, m, n, k, 1f, a, k, b, k, 0f, c1, n, 1);
        Gemm.Multiply(false, true, m, n, k, 1f, a, k, b, k, 0f, c2, n, 2);
        Assert.Equal(c1, c2);
    }

    [Fact]
    public void BetaZeroIgnoresNaNInC()
    {
        var c = new float[] { float.NaN, float.NaN };
        Gemm.Multiply(false, false, 1, 2, 1, 1f, [2f], 1, [3f, 4f], 2, 0f, c, 2);
        Assert.Equal([6f, 8f], c);
    }

    [Fact]
    public void ShortSpansAreRefused()
    {
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 2, 1f, new float[3], 2, new float[4], 2, 0f, new float[4], 2));
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 2, 2, 2, 1f, new float[4], 1, new float[4], 2, 0f, new float[4], 2));
    }
}
