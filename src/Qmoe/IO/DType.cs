namespace Qmoe.IO;

/// <summary>Element types of safetensors files that qmoe reads and writes.</summary>
public enum DType { F32, BF16, F16, I64, I32, U32, U16, U8, F8_E4M3 }

public static class DTypes
{
    public static int Size(this DType t) => t switch
    {
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.BF16 or DType.F16 or DType.U16 => 2,
        DType.I64 => 8,
        DType.U8 or DType.F8_E4M3 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static string Name(this DType t) => t.ToString();

    public static bool TryParse(string s, out DType t) =>
        Enum.TryParse(s, ignoreCase: false, out t) && Enum.IsDefined(t);
}
