using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qmoe.Numerics;

/// <summary>
/// The sum of a vector's lanes by halving folds: lanes i and i + n/2 first, down to one lane (8 instructions for 512
/// bits). Written by hand because .NET 10's <c>Vector512.Sum</c> reduces each 128-bit quarter on its own and adds the
/// four in scalar (35 instructions, JIT disassembly on AVX-512): the kernels reduce once per output and row, and on
/// the tiny models' 192-column rows that reduction took as long as the row's multiply-adds.
/// The order is fixed, so a product's result still depends only on its own row and vector.
/// </summary>
public static class HorizontalSum
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> v) => Sum(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v) => Sum(v.GetLower() + v.GetUpper());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> v)
    {
        v += Vector128.Shuffle(v, Vector128.Create(2, 3, 0, 1));
        v += Vector128.Shuffle(v, Vector128.Create(1, 0, 3, 2));
        return v.ToScalar();
    }

    // Sixteen sums at once (AVX-512 only): the same four folds as Sum(Vector512), each done for two vectors per
    // instruction pair by shuffling them side by side, so every lane of the result is bitwise Sum(v_n): 45
    // instructions instead of 16 x 8. MatMul's paired rows with 8 rows of X (16 sums per pair, W 4160 x 192 f32):
    // 115-116 -> 105-106 us. The same for PositionRows' 3-8 vectors (8 sums at once) was slower (2.0 -> 2.2-2.5 us
    // at 3 vectors on qwen3-moe-tiny's experts): not used there.

    /// <summary>Lane n = <see cref="Sum(Vector512{float})"/> of v_n. AVX-512 only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sum16(
        Vector512<float> v0, Vector512<float> v1, Vector512<float> v2, Vector512<float> v3,
        Vector512<float> v4, Vector512<float> v5, Vector512<float> v6, Vector512<float> v7,
        Vector512<float> v8, Vector512<float> v9, Vector512<float> v10, Vector512<float> v11,
        Vector512<float> v12, Vector512<float> v13, Vector512<float> v14, Vector512<float> v15)
    {
        // Fold 4 leaves lane 4k + j holding the vector in slot 4j + k, so the slots take the vectors 4 x 4 transposed.
        var q0 = Fold2(Fold1(v0, v4), Fold1(v8, v12)); // its 128-bit quarters: four partials each of v0, v4, v8, v12
        var q1 = Fold2(Fold1(v1, v5), Fold1(v9, v13));
        var q2 = Fold2(Fold1(v2, v6), Fold1(v10, v14));
        var q3 = Fold2(Fold1(v3, v7), Fold1(v11, v15));
        return Fold4(Fold3(q0, q1), Fold3(q2, q3));
    }

    // Lanes i and i + 8 of a and of b: [a 0..7 | b 0..7].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold1(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0b01_00_01_00) + Avx512F.Shuffle4x128(a, b, 0b11_10_11_10);

    // Per 8-lane half (one vector's partials), lanes i and i + 4: quarters [a's two vectors, b's two] of four partials each.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold2(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0b10_00_10_00) + Avx512F.Shuffle4x128(a, b, 0b11_01_11_01);

    // Per quarter, lanes i and i + 2: [a 0..1, b 0..1] in each quarter.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold3(Vector512<float> a, Vector512<float> b) =>
        Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle() + Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();

    // Per quarter, lanes i and i + 1: [a 0, a 2, b 0, b 2] + [a 1, a 3, b 1, b 3].
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fold4(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle(a, b, 0b10_00_10_00) + Avx512F.Shuffle(a, b, 0b11_01_11_01);
}
