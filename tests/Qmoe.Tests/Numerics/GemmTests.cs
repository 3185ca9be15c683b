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

public class GemmStructureTests
{
    // Skipping zero triangles must give bitwise the same result as the general product.
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(1)]
    public unsafe void SkippingZeroTrianglesChangesNothing(int flag)
    {
        var structure = (GemmStructure)flag; // LowerC = 1, LowerA = 2, LowerB = 4
        var rng = new Random((int)structure);
        int m = 290, n = 300, k = 600; // several k-blocks and row blocks
        if (structure == GemmStructure.LowerA) m = k;
        if (structure == GemmStructure.LowerB) n = k;
        var a = RandomMatrices.Uniform(rng, m * k);
        var b = RandomMatrices.Uniform(rng, k * n);
        if (structure == GemmStructure.LowerA) for (int i = 0; i < m; i++) for (int p = i + 1; p < k; p++) a[i * k + p] = 0f;
        if (structure == GemmStructure.LowerB) for (int p = 0; p < k; p++) for (int j = p + 1; j < n; j++) b[p * n + j] = 0f;
        var general = RandomMatrices.Uniform(rng, m * n);
        var skipping = (float[])general.Clone();
        fixed (float* pa = a, pb = b, pg = general, ps = skipping)
        {
            Gemm.Run(new GemmOperand(pa, k, false, false), new GemmOperand(pb, n, false, false), m, n, k, -1f, 1f, pg, n, 2);
            Gemm.Run(new GemmOperand(pa, k, false, false), new GemmOperand(pb, n, false, false), m, n, k, -1f, 1f, ps, n, 2, structure);
        }
        if (structure == GemmStructure.LowerC)
            for (int i = 0; i < m; i++) for (int j = i + 1; j < n; j++) skipping[i * n + j] = general[i * n + j];
        Assert.Equal(general, skipping);
    }
}
