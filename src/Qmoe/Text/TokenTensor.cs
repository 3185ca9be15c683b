using Qmoe.IO;

namespace Qmoe.Text;

/// <summary>Reads token-id tensors [rows, length] of a split from a safetensors file, validating them.</summary>
internal static class TokenTensor
{
    /// <summary>
    /// The first <paramref name="rows"/> rows of tensor <c>split.field</c> (I32 or I64, rank 2, every id in
    /// [0, <paramref name="vocabSize"/>)) as [rows, length] row-major.
    /// </summary>
    public static int[] Read(SafeTensorsFile file, string split, string field, int rows, int vocabSize, out int length)
    {
        string name = $"{split}.{field}";
        if (rows < 1) throw new QmoeException($"{file.Path}: {rows} samples requested, need at least 1");
        if (!file.Contains(name))
        {
            var splits = file.Tensors.Keys.Where(k => k.Contains('.')).Select(k => k[..k.LastIndexOf('.')]).Distinct().Order(StringComparer.Ordinal);
            string have = string.Join(", ", splits);
            throw new QmoeException($"{file.Path}: no tensor '{name}' for split '{split}' (splits here: {(have == "" ? "none" : have)})");
        }
        var info = file.Info(name);
        if (info.DType is not (DType.I32 or DType.I64))
            throw new QmoeException($"{file.Path}: tensor '{name}' has dtype {info.DType}, expected token ids (I32 or I64)");
        if (info.Shape.Length != 2 || info.Shape[1] < 1)
            throw new QmoeException($"{file.Path}: tensor '{name}' has shape {info.ShapeText}, expected [samples, length]");
        if (info.Shape[0] < rows)
            throw new QmoeException($"{file.Path}: tensor '{name}' has {info.Shape[0]} samples, {rows} requested");
        length = checked((int)info.Shape[1]);
        int[] ids = file.ReadInt32(name)[..checked(rows * length)];
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)vocabSize)
                throw new QmoeException($"{file.Path}: tensor '{name}' sample {i / length} position {i % length} holds id {ids[i]}, outside the vocabulary [0, {vocabSize})");
        return ids;
    }
}
