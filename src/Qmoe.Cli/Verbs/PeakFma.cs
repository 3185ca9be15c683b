using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qmoe.Cli;

/// <summary>Measures the machine's peak f32 FMA rate: independent register-resident FMA chains on every thread.</summary>
internal static class PeakFma
{
    /// <summary>GFLOP/s (2 per FMA lane) with <paramref name="threads"/> threads, each running for about <paramref name="seconds"/>.</summary>
    public static double Measure(int threads, double seconds = 0.3)
    {
        long[] flops = new long[threads];
        var sw = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => flops[t] = Run(seconds));
        return flops.Sum() / sw.Elapsed.TotalSeconds / 1e9;
    }

    private static long Run(double seconds)
    {
        long flops = 0;
        var sw = Stopwatch.StartNew();
        float sink = 0;
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            sink += Vector512.IsHardwareAccelerated ? Chains512(out long f) : Chains256(out f);
            flops += f;
        }
        GC.KeepAlive(sink);
        return flops;
    }

    private const int Iterations = 1 << 16;

    // No calls inside: the accumulators must stay in registers (a call would make the JIT spill every vector).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(out long flops)
    {
        var m = Vector512.Create(0.999999f); var a = Vector512.Create(1e-7f);
        // 12 independent chains hide the FMA latency on two pipes.
        Vector512<float> c0 = default, c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(m, a, c0); c1 = Vector512.FusedMultiplyAdd(m, a, c1); c2 = Vector512.FusedMultiplyAdd(m, a, c2);
            c3 = Vector512.FusedMultiplyAdd(m, a, c3); c4 = Vector512.FusedMultiplyAdd(m, a, c4); c5 = Vector512.FusedMultiplyAdd(m, a, c5);
            c6 = Vector512.FusedMultiplyAdd(m, a, c6); c7 = Vector512.FusedMultiplyAdd(m, a, c7); c8 = Vector512.FusedMultiplyAdd(m, a, c8);
            c9 = Vector512.FusedMultiplyAdd(m, a, c9); c10 = Vector512.FusedMultiplyAdd(m, a, c10); c11 = Vector512.FusedMultiplyAdd(m, a, c11);
        }
        flops = (long)Iterations * 12 * 16 * 2;
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(out long flops)
    {
        var m = Vector256.Create(0.999999f); var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = default, c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(m, a, c0); c1 = Vector256.FusedMultiplyAdd(m, a, c1); c2 = Vector256.FusedMultiplyAdd(m, a, c2);
            c3 = Vector256.FusedMultiplyAdd(m, a, c3); c4 = Vector256.FusedMultiplyAdd(m, a, c4); c5 = Vector256.FusedMultiplyAdd(m, a, c5);
            c6 = Vector256.FusedMultiplyAdd(m, a, c6); c7 = Vector256.FusedMultiplyAdd(m, a, c7); c8 = Vector256.FusedMultiplyAdd(m, a, c8);
            c9 = Vector256.FusedMultiplyAdd(m, a, c9);
        }
        flops = (long)Iterations * 10 * 8 * 2;
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9);
    }
}
