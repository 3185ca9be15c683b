using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
}
