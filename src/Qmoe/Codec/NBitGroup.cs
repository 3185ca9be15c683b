using System.Runtime.InteropServices;
using Qmoe.IO;
using Qmoe.Kernels;

namespace Qmoe.Codec;

/// <summary>
/// The per-expert types of one expert group and its n-bit experts (docs/FORMAT.md, "n-bit experts"). Present only in
/// groups holding at least one non-ternary expert; an all-ternary group (and every file written before) has none of
/// these tensors. For group G:
/// <c>G.expert_types</c> U8 [E] (0 = ternary, 2/3/4 = bits), <c>G.packed</c> U8 [bytes] (the n-bit experts'
/// <see cref="PackedNBitMatrix"/> rows, expert after expert), <c>G.packed_offsets</c> I64 [E + 1] (first byte of
/// each expert; empty for ternary experts), <c>G.row_scales</c> F32 [N, rows] and <c>G.row_zeros</c> U8 [N, rows]
/// for the N n-bit experts in expert order. A bit-packed n-bit expert has no dict16 codes and (0, 0) ternary scales.
/// Type 5, a coded 2-bit expert (docs/FORMAT.md, "Coded 2-bit experts"), has its grid in row_scales / row_zeros like
/// the packed ones, no packed bytes, and dict16 codes in the group's codes tensor indexing the file's four-level
/// dictionary.
/// </summary>
public sealed class NBitGroup
{
    public const byte TernaryType = 0;
    /// <summary>A 2-bit expert whose grid indices are dict16-coded with the four-level dictionary.</summary>
    public const byte CodedTwoBitType = 5;

    /// <summary>Grid bits of an n-bit type (2, 3, 4; the coded type: 2).</summary>
    public static int GridBits(byte type) => type == CodedTwoBitType ? 2 : type;

    public static string ExpertTypes(string group) => group + ".expert_types";
    public static string Packed(string group) => group + ".packed";
    public static string PackedOffsets(string group) => group + ".packed_offsets";
    public static string RowScales(string group) => group + ".row_scales";
    public static string RowZeros(string group) => group + ".row_zeros";

    private readonly byte[] _types;
    private readonly int[] _ordinal; // n-bit expert e → its index in row_scales / row_zeros; -1 for ternary
    private readonly long[] _offsets;
    private readonly TensorInfo _packed, _scales, _zeros;
    private readonly int _rows, _cols;

    private NBitGroup(byte[] types, int[] ordinal, long[] offsets, TensorInfo packed, TensorInfo scales, TensorInfo zeros, IReadOnlyList<TensorInfo> tensors, int rows, int cols)
    {
        _types = types; _ordinal = ordinal; _offsets = offsets; _packed = packed; _scales = scales; _zeros = zeros;
        Tensors = tensors; _rows = rows; _cols = cols;
    }

    /// <summary>The five tensors (types, packed, offsets, scales, zeros).</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>Per expert: 0 = ternary, 2 / 3 / 4 = bits (bit-packed), 5 = coded 2-bit.</summary>
    public ReadOnlySpan<byte> Types => _types;

    /// <summary>Experts stored as dict16 ternary codes.</summary>
    public int TernaryExperts => _ordinal.Count(k => k < 0);

    /// <summary>
    /// The bf16 (min, max) per row of every expert [E, rows, 2] from those of the ternary experts alone (in expert order),
    /// an n-bit expert's being (0, 0): since issue 16's compact layout the scale fields of a group with n-bit experts
    /// hold the ternary experts' scales only.
    /// </summary>
    public static ushort[] SpreadTernaryScales(ReadOnlySpan<ushort> ternaryScales, ReadOnlySpan<byte> types, int rows)
    {
        var all = new ushort[2L * types.Length * rows];
        int t = 0;
        for (int e = 0; e < types.Length; e++)
            if (types[e] == TernaryType)
                ternaryScales.Slice(2 * rows * t++, 2 * rows).CopyTo(all.AsSpan(2 * rows * e, 2 * rows));
        return all;
    }

    /// <summary>True when expert <paramref name="e"/> is an n-bit grid (bit-packed or coded), with a row of
    /// <c>row_scales</c> / <c>row_zeros</c> per matrix row.</summary>
    public bool IsNBit(int e) => _types[e] != TernaryType;

    /// <summary>True when expert <paramref name="e"/> is stored bit-packed (in <c>G.packed</c>).</summary>
    public bool IsPacked(int e) => _types[e] is not (TernaryType or CodedTwoBitType);

    /// <summary>True when expert <paramref name="e"/> is a coded 2-bit expert (dict16 codes, four-level dictionary).</summary>
    public bool IsCoded(int e) => _types[e] == CodedTwoBitType;

    /// <summary>Bytes of the n-bit tensors (packed codes, offsets, grids, types): every byte counted.</summary>
    public long Bytes => Tensors.Sum(t => t.ByteLength);

    /// <summary>Reads and checks the group's type tensors; null when the group has none (all ternary).</summary>
    public static NBitGroup? Read(TensorStore store, string group, int experts, int rows, int cols)
    {
        string typesName = ExpertTypes(group);
        if (!store.Contains(typesName)) return null;
        TensorInfo Tensor(string tensor, DType dtype, params long[] shape)
        {
            if (!store.Contains(tensor)) throw new QmoeException($"{store.Directory}: tensor '{tensor}' missing");
            var t = store.Info(tensor);
            if (t.DType != dtype || (shape.Length > 0 && !t.Shape.AsSpan().SequenceEqual(shape)) || t.Shape.Length == 0)
                throw new QmoeException($"{store.FileOf(tensor).Path}: tensor '{tensor}' has {t.DType} {t.ShapeText}, expected {dtype} [{(shape.Length > 0 ? string.Join(", ", shape) : "n")}]");
            return t;
        }
        var typesT = Tensor(typesName, DType.U8, experts);
        var types = store.FileOf(typesName).Bytes(typesT).ToArray();
        var ordinal = new int[experts];
        int n = 0;
        for (int e = 0; e < experts; e++)
        {
            if (types[e] is not (TernaryType or CodedTwoBitType) && !PackedNBitMatrix.IsSupportedBits(types[e]))
                throw new QmoeException($"{store.FileOf(typesName).Path}: tensor '{typesName}' expert {e} has type {types[e]} (expected 0 = ternary, 2, 3, 4 or 5 = coded 2-bit)");
            ordinal[e] = types[e] == TernaryType ? -1 : n++;
        }
        var offsetsT = Tensor(PackedOffsets(group), DType.I64, experts + 1L);
        var offsets = MemoryMarshal.Cast<byte, long>(store.FileOf(offsetsT.Name).Bytes(offsetsT)).ToArray();
        var packedT = Tensor(Packed(group), DType.U8);
        if (packedT.ByteLength > int.MaxValue) throw new QmoeException($"{store.FileOf(packedT.Name).Path}: tensor '{packedT.Name}' is larger than 2 GiB (shard the group)");
        if (packedT.Shape.Length != 1) throw new QmoeException($"{store.FileOf(packedT.Name).Path}: tensor '{packedT.Name}' must have one dimension");
        string where = $"{store.FileOf(offsetsT.Name).Path}: tensor '{offsetsT.Name}'";
        if (offsets[0] != 0) throw new QmoeException($"{where}: first offset {offsets[0]}, not 0");
        for (int e = 0; e < experts; e++)
        {
            long expected = types[e] is TernaryType or CodedTwoBitType ? 0 : rows * PackedNBitMatrix.RowBytesOf(types[e], cols);
            if (offsets[e + 1] - offsets[e] != expected)
                throw new QmoeException($"{where}: expert {e} has {offsets[e + 1] - offsets[e]} bytes, expected {expected} for type {types[e]} [{rows}, {cols}]");
        }
        if (offsets[experts] != packedT.Shape[0]) throw new QmoeException($"{where}: offsets end at {offsets[experts]}, packed has {packedT.Shape[0]} bytes");
        var scalesT = Tensor(RowScales(group), DType.F32, n, rows);
        var zerosT = Tensor(RowZeros(group), DType.U8, n, rows);
        var zeros = store.FileOf(zerosT.Name).Bytes(zerosT);
        for (int e = 0; e < experts; e++)
            if (ordinal[e] >= 0)
                for (int r = 0; r < rows; r++)
                    if (zeros[ordinal[e] * rows + r] >= 1 << GridBits(types[e]))
                        throw new QmoeException($"{store.FileOf(zerosT.Name).Path}: tensor '{zerosT.Name}' expert {e} row {r}: zero point {zeros[ordinal[e] * rows + r]} exceeds {GridBits(types[e])} bits");
        return new NBitGroup(types, ordinal, offsets, packedT, scalesT, zerosT, [typesT, packedT, offsetsT, scalesT, zerosT], rows, cols);
    }

    /// <summary>Zero-copy kernel views of bit-packed n-bit expert <paramref name="e"/>.</summary>
    public NBitMatrix Matrix(TensorStore store, int e)
    {
        if (!IsPacked(e)) throw new QmoeException($"{_packed.Name}: expert {e} is {(IsCoded(e) ? "coded" : "ternary")}, not bit-packed");
        var packed = store.FileOf(_packed.Name).Bytes(_packed)[(int)_offsets[e]..(int)_offsets[e + 1]];
        return new NBitMatrix(packed, GridScales(store, e), GridZeros(store, e), _types[e], _rows, _cols);
    }

    /// <summary>Zero-copy view of n-bit expert <paramref name="e"/>'s grid scale per row.</summary>
    public ReadOnlySpan<float> GridScales(TensorStore store, int e) =>
        MemoryMarshal.Cast<byte, float>(store.FileOf(_scales.Name).Bytes(_scales)).Slice(Ordinal(e) * _rows, _rows);

    /// <summary>Zero-copy view of n-bit expert <paramref name="e"/>'s grid zero point per row.</summary>
    public ReadOnlySpan<byte> GridZeros(TensorStore store, int e) => store.FileOf(_zeros.Name).Bytes(_zeros).Slice(Ordinal(e) * _rows, _rows);

    private int Ordinal(int e) => _ordinal[e] >= 0 ? _ordinal[e] : throw new QmoeException($"{_scales.Name}: expert {e} is ternary, not n-bit");

    /// <summary>Checks every n-bit expert's scales are finite (for <c>verify</c>).</summary>
    public void CheckScales(TensorStore store, string where)
    {
        foreach (var s in MemoryMarshal.Cast<byte, float>(store.FileOf(_scales.Name).Bytes(_scales)))
            if (!float.IsFinite(s)) throw new QmoeException($"{where}: tensor '{_scales.Name}' has a non-finite scale");
    }
}
