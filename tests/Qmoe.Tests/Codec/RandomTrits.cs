namespace Qmoe.Tests.Codec;

/// <summary>Random ternary matrices for codec tests: i.i.d. trits with a given zero fraction.</summary>
internal static class RandomTrits
{
    public static byte[] Iid(Random rnd, int count, double zeroFraction)
    {
        var t = new byte[count];
        for (int i = 0; i < t.Length; i++)
            t[i] = rnd.NextDouble() < zeroFraction ? (byte)0 : (byte)(1 + rnd.Next(2));
        return t;
    }
}
