using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Qmoe.Numerics;

namespace Qmoe.Models.Layers;

/// <summary>
/// Attention's loops over the keys of one head: the scores q · K_j and the weighted sum Σ_j p_j V_j, vectorised across
/// the head's width. Written by hand because the heads are narrow (32–128 floats): a TensorPrimitives call per key (Dot,
/// MultiplyAdd) cost more than its arithmetic, and with a scalar exp per key attention took 14% of a qwen3-moe-tiny
/// decode step (perf, AMD EPYC Zen 5). Widest vectors first, then narrower ones and a scalar tail; each output's
/// operations depend only on its own key and width, never on the batch.
/// </summary>
internal static unsafe class AttentionRows
{
    /// <summary>scores[j] = scale · (q · keys[j·stride .. + width)) for j &lt; scores.Length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scores(ReadOnlySpan<float> q, ReadOnlySpan<float> keys, int stride, float scale, Span<float> scores)
    {
        int width = q.Length, count = scores.Length;
        if (count > 0 && (long)(count - 1) * stride + width > keys.Length) throw new ArgumentException("keys shorter than the scored rows");
        fixed (float* qp = q) fixed (float* kp = keys) fixed (float* sp = scores)
            for (int j = 0; j < count; j++) sp[j] = Dot(qp, kp + (long)j * stride, width) * scale;
    }

    /// <summary>output[0 .. width) = Σ_j weights[j] · values[j·stride .. + width), j in key order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void WeightedSum(ReadOnlySpan<float> values, int stride, ReadOnlySpan<float> weights, Span<float> output)
    {
        int width = output.Length, count = weights.Length;
        if (count > 0 && (long)(count - 1) * stride + width > values.Length) throw new ArgumentException("values shorter than the weighted rows");
        fixed (float* vp = values) fixed (float* wp = weights) fixed (float* op = output)
        {
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
                for (; i + 16 <= width; i += 16)
                {
                    var a = Vector512<float>.Zero;
                    for (int j = 0; j < count; j++) a = Vector512.FusedMultiplyAdd(Vector512.Load(vp + (long)j * stride + i), Vector512.Create(wp[j]), a);
                    a.Store(op + i);
                }
            if (Vector256.IsHardwareAccelerated)
                for (; i + 8 <= width; i += 8)
                {
                    var a = Vector256<float>.Zero;
                    for (int j = 0; j < count; j++) a = Vector256.FusedMultiplyAdd(Vector256.Load(vp + (long)j * stride + i), Vector256.Create(wp[j]), a);
                    a.Store(op + i);
                }
            if (Vector128.IsHardwareAccelerated)
                for (; i + 4 <= width; i += 4)
                {
                    var a = Vector128<float>.Zero;
                    for (int j = 0; j < count; j++) a = Vector128.FusedMultiplyAdd(Vector128.Load(vp + (long)j * stride + i), Vector128.Create(wp[j]), a);
                    a.Store(op + i);
                }
            for (; i < width; i++)
            {
                float a = 0;
                for (int j = 0; j < count; j++) a = MathF.FusedMultiplyAdd(vp[(long)j * stride + i], wp[j], a);
                op[i] = a;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int width)
    {
        int i = 0;
        float s = 0;
        if (Vector512.IsHardwareAccelerated && width >= 16)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= width; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            s = HorizontalSum.Sum(acc);
        }
        else if (Vector256.IsHardwareAccelerated && width >= 8)
        {
            var acc = Vector256<float>.Zero;
            for (; i + 8 <= width; i += 8) acc = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), acc);
            s = HorizontalSum.Sum(acc);
        }
        else if (Vector128.IsHardwareAccelerated && width >= 4)
        {
            var acc = Vector128<float>.Zero;
            for (; i + 4 <= width; i += 4) acc = Vector128.FusedMultiplyAdd(Vector128.Load(a + i), Vector128.Load(b + i), acc);
            s = HorizontalSum.Sum(acc);
        }
        for (; i < width; i++) s = MathF.FusedMultiplyAdd(a[i], b[i], s);
        return s;
    }
}
