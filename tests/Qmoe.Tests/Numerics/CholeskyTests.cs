using Qmoe.Numerics;

namespace Qmoe.Tests.Numerics;

public class CholeskyTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(129)]
    [InlineData(300)]
    public void FactorMatchesReference(int n)
    {
        var a = RandomMatrices.Spd(new Random(n), n);
        var expected = NumericsReference.Cholesky(a, n)!;
        var l = (float[])a.Clone();
        Assert.True(Cholesky.TryFactor(l, n, 2));
        for (int i = 0; i < n * n; i++) if (!(Math.Abs(l[i] - expected[i]) < 1e-4 * (1 + Math.Abs(expected[i])))) Assert.Fail($"{i}: {l[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(5)]
    [InlineData(200)]
    public void IndefiniteMatrixIsReported(int n)
    {
        var a = RandomMatrices.Spd(new Random(n), n);
        a[(n - 1) * n + n - 1] = -1f;
        Assert.False(Cholesky.TryFactor(a, n));
        var nan = RandomMatrices.Spd(new Random(n), n);
        nan[n / 2 * n + n / 2] = float.NaN;
        Assert.False(Cholesky.TryFactor(nan, n));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(65)]
    [InlineData(250)]
    public void TriangularInverseMatchesReference(int n)
    {
        var l64 = NumericsReference.Cholesky(RandomMatrices.Spd(new Random(n + 1), n), n)!;
        var expected = NumericsReference.InvertLower(l64, n);
        var l = l64.Select(v => (float)v).ToArray();
        for (int i = 0; i < n; i++) for (int j = i + 1; j < n; j++) l[i * n + j] = 123f; // upper must be ignored
        Assert.True(TriangularInverse.InvertLower(l, n, 2));
        for (int i = 0; i < n * n; i++) if (!(Math.Abs(l[i] - expected[i]) < 1e-3 * (1 + Math.Abs(expected[i])))) Assert.Fail($"{i}: {l[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(3)]
    [InlineData(130)]
    [InlineData(257)]
    public void InverseUpperFactorMatchesPyTorchRoute(int n)
    {
        var h = RandomMatrices.Spd(new Random(n + 2), n);
        var expected = NumericsReference.InverseUpperFactor(h, n)!;
        var u = new float[n * n];
        Assert.True(Cholesky.TryInverseUpperFactor(h, n, u, 2));
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                if (j < i) Assert.Equal(0f, u[i * n + j]);
                if (!(Math.Abs(u[i * n + j] - expected[i * n + j]) < 1e-4 * scale)) Assert.Fail($"({i},{j}): {u[i * n + j]} vs {expected[i * n + j]}");
            }
    }
}
