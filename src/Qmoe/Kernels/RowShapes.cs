using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qmoe.Kernels;

/// <summary>
/// Compile-time shape of a <see cref="SimdCompressedMatVec"/> row loop: bytes per workspace unit (4 × the batch
/// lanes, as a shift) and how many vectors of the loop's vector type one slot's two units span.
/// </summary>
internal interface IRowShape
{
    static abstract int UnitShift { get; }
    static abstract int Vectors { get; }
}

internal struct Lanes1Scalar : IRowShape { public static int UnitShift => 2; public static int Vectors => 2; }
internal struct Lanes1 : IRowShape { public static int UnitShift => 2; public static int Vectors => 1; }
internal struct Lanes2 : IRowShape { public static int UnitShift => 3; public static int Vectors => 1; }
internal struct Lanes4x1 : IRowShape { public static int UnitShift => 4; public static int Vectors => 1; }
internal struct Lanes4x2 : IRowShape { public static int UnitShift => 4; public static int Vectors => 2; }
internal struct Lanes8x1 : IRowShape { public static int UnitShift => 5; public static int Vectors => 1; }
internal struct Lanes8x2 : IRowShape { public static int UnitShift => 5; public static int Vectors => 2; }
internal struct Lanes8x4 : IRowShape { public static int UnitShift => 5; public static int Vectors => 4; }

/// <summary>Compile-time slot count of a <see cref="SimdCompressedMatVec"/> row loop (<see cref="NonzeroTable.Slots"/>).</summary>
internal interface ISlotCount
{
    static abstract bool Five { get; }
}

internal struct Slots4 : ISlotCount { public static bool Five => false; }
internal struct Slots5 : ISlotCount { public static bool Five => true; }

/// <summary>How many x vectors a <see cref="WindowRows"/> row loop carries, sharing each decoded window (1..4; the
/// 256-bit loop takes at most 2; <see cref="PositionRows"/> up to 8).</summary>
internal interface IVectorCount { static abstract int Count { get; } }
internal struct OneVector : IVectorCount { public static int Count => 1; }
internal struct TwoVectors : IVectorCount { public static int Count => 2; }
internal struct ThreeVectors : IVectorCount { public static int Count => 3; }
internal struct FourVectors : IVectorCount { public static int Count => 4; }
internal struct FiveVectors : IVectorCount { public static int Count => 5; }
internal struct SixVectors : IVectorCount { public static int Count => 6; }
internal struct SevenVectors : IVectorCount { public static int Count => 7; }
internal struct EightVectors : IVectorCount { public static int Count => 8; }

/// <summary>Unaligned load and add for float and Vector128/256/512 of float, chosen when the JIT specialises the generic loop.</summary>
internal static unsafe class SlotVector
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Load<TVec>(byte* p) where TVec : unmanaged => Unsafe.ReadUnaligned<TVec>(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVec Add<TVec>(TVec a, TVec b) where TVec : unmanaged
    {
        if (typeof(TVec) == typeof(float)) return Unsafe.BitCast<float, TVec>(Unsafe.BitCast<TVec, float>(a) + Unsafe.BitCast<TVec, float>(b));
        if (typeof(TVec) == typeof(Vector128<float>))
            return Unsafe.BitCast<Vector128<float>, TVec>(Unsafe.BitCast<TVec, Vector128<float>>(a) + Unsafe.BitCast<TVec, Vector128<float>>(b));
        if (typeof(TVec) == typeof(Vector256<float>))
            return Unsafe.BitCast<Vector256<float>, TVec>(Unsafe.BitCast<TVec, Vector256<float>>(a) + Unsafe.BitCast<TVec, Vector256<float>>(b));
        if (typeof(TVec) == typeof(Vector512<float>))
            return Unsafe.BitCast<Vector512<float>, TVec>(Unsafe.BitCast<TVec, Vector512<float>>(a) + Unsafe.BitCast<TVec, Vector512<float>>(b));
        throw new NotSupportedException(typeof(TVec).Name);
    }
}
