using System.Runtime.InteropServices;
using Qmoe.IO;

namespace Qmoe.Models.Layers;

/// <summary>
/// A dense weight matrix W [Rows, Cols] row-major, f32 or bf16, either owned (a float[]) or a zero-copy view
/// into a memory-mapped safetensors file (which must outlive the matrix). bf16 weights stay bf16 in memory
/// and are widened on the fly by the kernels. An FP8 weight is f32 to its users, dequantized on first use into the
/// store's cache (<see cref="TensorStore.Dequantized"/>), so only the weights a pass touches are materialised.
/// </summary>
public sealed unsafe class Matrix : IWeightMatrix
{
    private readonly float[]? _owned;
    private readonly void* _ptr;
    private readonly (TensorStore Store, string Name)? _fp8;

    public int Rows { get; }
    public int Cols { get; }
    /// <summary><see cref="DType.F32"/> or <see cref="DType.BF16"/>.</summary>
    public DType DType { get; }

    /// <summary>An owned f32 matrix (e.g. dequantized expert weights).</summary>
    public Matrix(float[] data, int rows, int cols)
    {
        if (data.Length != (long)rows * cols) throw new ArgumentException($"data has {data.Length} elements, expected {rows}×{cols}");
        _owned = data; Rows = rows; Cols = cols; DType = DType.F32;
    }

    private Matrix(void* ptr, DType dtype, int rows, int cols, (TensorStore, string)? fp8 = null)
    {
        _ptr = ptr; DType = dtype; Rows = rows; Cols = cols; _fp8 = fp8;
    }

    /// <summary>A view of f32 or bf16 memory the caller keeps alive and pinned (e.g. an activation buffer).</summary>
    internal static Matrix FromPointer(void* ptr, DType dtype, int rows, int cols) => new(ptr, dtype, rows, cols);

    /// <summary>
    /// A view of tensor <paramref name="name"/> of <paramref name="store"/>, which must have shape [rows, cols] and
    /// dtype F32, BF16, or F8_E4M3 (block-scaled; an f32 matrix dequantized on first use).
    /// </summary>
    public static Matrix View(TensorStore store, string name, int rows, int cols)
    {
        var f = store.FileOf(name);
        var t = f.Info(name);
        store.CheckShape(t, new long[] { rows, cols });
        if (t.DType == DType.F8_E4M3)
        {
            store.CheckFp8(name, rows, cols); // refused at load, not on first use
            return new Matrix(null, DType.F32, rows, cols, (store, name));
        }
        if (t.DType is not (DType.F32 or DType.BF16))
            throw new QmoeException($"{f.Path}: tensor '{name}' has dtype {t.DType}; weights must be F32 or BF16");
        return new Matrix(f.Pointer(t), t.DType, rows, cols);
    }

    public bool IsBf16 => DType == DType.BF16;

    public void Multiply(ReadOnlySpan<float> x, int n, Span<float> y) => Linear.Forward(x, n, this, y);

    /// <summary>All weights as f32 (only for f32 matrices).</summary>
    public ReadOnlySpan<float> F32 => DType == DType.F32
        ? (_owned ?? (_fp8 is var (store, name) ? store.Dequantized(name, Rows, Cols) : new ReadOnlySpan<float>(_ptr, checked(Rows * Cols))))
        : throw new InvalidOperationException("matrix is bf16");

    /// <summary>All weights as raw bf16 (only for bf16 matrices).</summary>
    public ReadOnlySpan<ushort> Bf16 => DType == DType.BF16
        ? new ReadOnlySpan<ushort>(_ptr, checked(Rows * Cols))
        : throw new InvalidOperationException("matrix is f32");

    /// <summary>Row r widened to f32 into <paramref name="scratch"/> (a copy only for bf16; f32 rows are returned as views).</summary>
    public ReadOnlySpan<float> Row(int r, Span<float> scratch)
    {
        if (DType == DType.F32) return F32.Slice(r * Cols, Cols);
        BFloat16.ToFloat(Bf16.Slice(r * Cols, Cols), scratch);
        return scratch[..Cols];
    }

    /// <summary>A dense f32 copy of all weights.</summary>
    public float[] ToFloat32()
    {
        var dst = new float[(long)Rows * Cols];
        if (DType == DType.F32) F32.CopyTo(dst); else BFloat16.ToFloat(Bf16, dst);
        return dst;
    }

    public long ByteLength => (long)Rows * Cols * DType.Size();
}
