namespace Qmoe.IO;

/// <summary>One tensor entry of a safetensors header. <see cref="Offset"/> is relative to the start of the file.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Offset, long ByteLength)
{
    public long ElementCount => ByteLength / DType.Size();
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
