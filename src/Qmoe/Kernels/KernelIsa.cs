using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qmoe.Kernels;

/// <summary>
/// Instruction-set paths of the CPU kernels, narrowest first: plain scalar code, 128-bit vectors (SSE on x86,
/// NEON on ARM), AVX2 + FMA (256-bit), AVX-512 (512-bit). A path can run wherever it is ≤ <see cref="KernelIsas.Best"/>.
/// </summary>
public enum KernelIsa { Scalar, Vector128, Avx2, Avx512 }

/// <summary>Run-time choice and names of <see cref="KernelIsa"/>.</summary>
public static class KernelIsas
{
    /// <summary>
    /// The widest path this process runs: follows the JIT's view (<c>DOTNET_EnableAVX512=0</c> on .NET 10, which ignores <c>DOTNET_EnableAVX512F</c>;
    /// <c>DOTNET_EnableAVX2=0</c>, <c>DOTNET_EnableHWIntrinsic=0</c> narrow it).
    /// </summary>
    public static KernelIsa Best { get; } =
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported ? KernelIsa.Avx512 :
        Vector256.IsHardwareAccelerated && Avx2.IsSupported && Fma.IsSupported ? KernelIsa.Avx2 :
        Vector128.IsHardwareAccelerated ? KernelIsa.Vector128 : KernelIsa.Scalar;

    /// <summary>Every path this process can run, widest first.</summary>
    public static IEnumerable<KernelIsa> Supported() =>
        Enum.GetValues<KernelIsa>().Where(i => i <= Best).OrderDescending();

    public static string Name(KernelIsa isa) => isa switch
    {
        KernelIsa.Avx512 => "avx512",
        KernelIsa.Avx2 => "avx2",
        KernelIsa.Vector128 => "vector128",
        _ => "scalar",
    };

    /// <summary>The path named <paramref name="name"/> (avx512|avx2|vector128|scalar), or <see cref="Best"/> for null;
    /// a path this machine cannot run is refused with a one-line <see cref="QmoeException"/>.</summary>
    public static KernelIsa Resolve(string? name)
    {
        if (name == null) return Best;
        var isa = Enum.GetValues<KernelIsa>().FirstOrDefault(i => Name(i) == name.ToLowerInvariant(), (KernelIsa)(-1));
        if (isa < 0) throw new QmoeException($"--isa '{name}': expected avx512, avx2, vector128 or scalar");
        if (isa > Best) throw new QmoeException($"--isa {Name(isa)}: not supported here (best is {Name(Best)})");
        return isa;
    }

    /// <summary>A kernel's path: <paramref name="isa"/>, or <see cref="Best"/> for null; throws <see cref="ArgumentException"/>
    /// when it is wider than this machine runs.</summary>
    internal static KernelIsa OrBest(KernelIsa? isa)
    {
        var chosen = isa ?? Best;
        if (chosen > Best || chosen < KernelIsa.Scalar) throw new ArgumentException($"{Name(chosen)} is not supported on this machine (best: {Name(Best)})", nameof(isa));
        return chosen;
    }
}
