using System.Runtime.Intrinsics;
using Qmoe.Numerics;

namespace Qmoe.Tests.Numerics;

public class HorizontalSumTests
{
    /// <summary>The fold order in scalar: lanes i and i + n/2 added, until one lane is left.</summary>
    private static float FoldReference(float[] lanes)
    {
        var v = (float[])lanes.Clone();
        for (int n = v.Length / 2; n >= 1; n /= 2)
            for (int i = 0; i < n; i++) v[i] += v[i + n];
        return v[0];
    }

    [Fact]
    public void SumsFoldHalvesInAFixedOrder()
    {
        var rng = new Random(5);
        for (int t = 0; t < 200; t++)
        {
            // Magnitudes spread over 2^±20 so that a different order would round differently.
            var lanes = Enumerable.Range(0, 16).Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-20, 20)))).ToArray();
            Assert.Equal(FoldReference(lanes), HorizontalSum.Sum(Vector512.Create(lanes)));
            Assert.Equal(FoldReference(lanes[..8]), HorizontalSum.Sum(Vector256.Create(lanes[..8])));
            Assert.Equal(FoldReference(lanes[..4]), HorizontalSum.Sum(Vector128.Create(lanes[..4])));
        }
    }

    private sealed class Avx512FactAttribute : FactAttribute
    {
        public Avx512FactAttribute()
        {
            if (!Vector512.IsHardwareAccelerated) Skip = "Sum16 is AVX-512 only; this machine (or DOTNET_Enable* settings) lacks it";
        }
    }

    [Avx512Fact]
    public void ManySumsAtOnceEqualOneAtATime()
    {
        var rng = new Random(9);
        for (int t = 0; t < 50; t++)
        {
            var v = Enumerable.Range(0, 16).Select(_ => Vector512.Create(Enumerable.Range(0, 16)
                .Select(_ => (float)((rng.NextDouble() - 0.5) * Math.Pow(2, rng.Next(-20, 20)))).ToArray())).ToArray();
            var all = HorizontalSum.Sum16(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]);
            for (int n = 0; n < 16; n++) Assert.Equal(HorizontalSum.Sum(v[n]), all[n]);
        }
    }
}
