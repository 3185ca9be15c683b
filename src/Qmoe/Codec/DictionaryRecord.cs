using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using Qmoe.IO;

namespace Qmoe.Codec;

/// <summary>How a version-2 file stores its dictionary.</summary>
public enum DictionaryStorage
{
    /// <summary>Whichever layout below takes fewer bytes (payload and header entry counted); parameters whenever
    /// the dictionary can be regenerated from them.</summary>
    Auto,
    /// <summary><c>qmoe.dictionary_trie</c>: the entry set as a trie bit stream (55–61 KB), any prefix-closed dictionary.</summary>
    Trie,
    /// <summary><c>qmoe.dictionary_costs</c>: the nine integer pair costs the dictionary is built from, plus a checksum
    /// of the result (80 bytes); only for dictionaries made by <see cref="CodeDictionary.Build(ReadOnlySpan{long}, string?)"/>.</summary>
    Parameters,
}

/// <summary>The dictionary tensor the writer stores: name, dtype, shape and bytes.</summary>
public sealed record StoredDictionary(string Name, DType DType, long[] Shape, byte[] Bytes)
{
    /// <summary>Bytes this tensor adds to the file when its data starts at <paramref name="dataOffset"/>.</summary>
    public long FileBytes(long dataOffset) => DictionaryRecord.StoredBytes(Name, DType, Shape, Bytes.Length, dataOffset);
}

/// <summary>
/// The dictionary's part of a compressed file (docs/FORMAT.md): v1 the [65536, 2] word table; v2 either the trie
/// stream or the parameter record <c>qmoe.dictionary_costs</c> I64 [10] — elements 0..8 the integer pair costs
/// (1..2^40) given to <see cref="CodeDictionary.Build(ReadOnlySpan{long}, string?)"/>, element 9 the XxHash64 of the
/// regenerated dictionary's canonical entry words (little-endian U32 [65536, 2]) as the I64 of the same bits. The
/// reader rebuilds the dictionary from the costs and refuses the file unless the checksum matches, so a changed
/// builder or a damaged record can never decode codes with a different dictionary.
/// </summary>
public static class DictionaryRecord
{
    /// <summary>Elements of the parameter record: nine costs and the checksum.</summary>
    public const int ParameterElements = PairModel.Symbols + 1;

    /// <summary>Elements of the four-level dictionary's record (<c>qmoe.dictionary4_costs</c>): sixteen costs and the checksum.</summary>
    public const int FourLevelElements = 16 + 1;

    /// <summary>The dictionary tensor a version-<paramref name="version"/> file holds (the trie when neither is present).</summary>
    public static string TensorName(TensorStore store, int version) =>
        version == CompressedFormat.Version1 ? CompressedFormat.DictionaryTensor
        : store.Contains(CompressedFormat.DictionaryCostsTensor) ? CompressedFormat.DictionaryCostsTensor
        : CompressedFormat.DictionaryTrieTensor;

    /// <summary>
    /// The tensor to write for <paramref name="dict"/> (canonical for v2) under <paramref name="storage"/>. Auto compares
    /// the bytes each layout adds to the file — payload plus its header entry and checksum metadata, with the data
    /// offset <paramref name="dataOffset"/> it will be written at — and keeps the smaller.
    /// </summary>
    public static StoredDictionary Encode(CodeDictionary dict, int version, DictionaryStorage storage, long dataOffset)
    {
        if (version == CompressedFormat.Version1)
            return new(CompressedFormat.DictionaryTensor, DType.U32, [CodeDictionary.Size, 2], dict.AsBytes().ToArray());
        if (storage == DictionaryStorage.Parameters && !dict.IsRegenerable)
            throw new QmoeException($"dictionary '{dict.Source}' was not built from pair costs; it can only be stored as a trie");
        StoredDictionary? parameters = dict.IsRegenerable && storage != DictionaryStorage.Trie
            ? new(CompressedFormat.DictionaryCostsTensor, DType.I64, [ParameterElements], ParameterBytes(dict)) : null;
        if (storage == DictionaryStorage.Parameters) return parameters!;
        byte[] trie = DictionaryTrieMask.Encode(dict);
        var stored = new StoredDictionary(CompressedFormat.DictionaryTrieTensor, DType.U8, [trie.Length], trie);
        if (parameters == null) return stored;
        return parameters.FileBytes(dataOffset) <= stored.FileBytes(dataOffset) ? parameters : stored;
    }

    /// <summary>
    /// Bytes a tensor adds to a safetensors file written by <see cref="SafeTensorsWriter"/>: its data, its header entry
    /// and its checksum metadata entry (to within the header's 8-byte alignment padding).
    /// </summary>
    public static long StoredBytes(string name, DType dtype, long[] shape, long bytes, long dataOffset)
    {
        string entry = $",\"{name}\":{{\"dtype\":\"{dtype.Name()}\",\"shape\":[{string.Join(",", shape)}],\"data_offsets\":[{dataOffset},{dataOffset + bytes}]}}"
            + $",\"{SafeTensorsWriter.HashPrefix}{name}\":\"0123456789abcdef\"";
        return bytes + Encoding.UTF8.GetByteCount(entry);
    }

    private static byte[] ParameterBytes(CodeDictionary dict)
    {
        var record = new long[dict.PairSymbols + 1];
        dict.BuildCosts.CopyTo(record);
        record[^1] = (long)Checksum(dict.Canonical());
        return MemoryMarshal.AsBytes(record.AsSpan()).ToArray();
    }

    /// <summary>The tensor recording a four-level dictionary (always its costs: it is only ever built from them).</summary>
    public static StoredDictionary EncodeFourLevel(CodeDictionary dict)
    {
        if (dict.Levels != 4 || !dict.IsRegenerable) throw new ArgumentException("a four-level dictionary built from pair costs", nameof(dict));
        return new(CompressedFormat.FourLevelDictionaryTensor, DType.I64, [FourLevelElements], ParameterBytes(dict));
    }

    /// <summary>The file's four-level dictionary (coded 2-bit experts), or null when it has none.</summary>
    public static CodeDictionary? ReadFourLevel(TensorStore store)
    {
        string name = CompressedFormat.FourLevelDictionaryTensor;
        if (!store.Contains(name)) return null;
        var f = store.FileOf(name);
        var t = f.Info(name);
        string where = $"{f.Path}: tensor '{t.Name}'";
        if (t.DType != DType.I64 || t.Shape is not [FourLevelElements])
            throw new QmoeException($"{where}: has {t.DType} {t.ShapeText}, expected I64 [{FourLevelElements}]");
        return FromParameters(MemoryMarshal.Cast<byte, long>(f.Bytes(t)), where, "four-level " + where, FourLevelElements);
    }

    private static ulong Checksum(CodeDictionary canonical) => XxHash64.HashToUInt64(canonical.AsBytes());

    /// <summary>Reads and checks the dictionary of an opened store (v1 word table, v2 trie or parameter record).</summary>
    public static CodeDictionary Read(TensorStore store, int version, string? source)
    {
        string name = TensorName(store, version);
        if (!store.Contains(name)) throw new QmoeException($"{store.Directory}: tensor '{name}' missing");
        var f = store.FileOf(name);
        var t = f.Info(name);
        string where = $"{f.Path}: tensor '{t.Name}'";
        if (version == CompressedFormat.Version1)
        {
            if (t.DType != DType.U32 || t.Shape is not [CodeDictionary.Size, 2])
                throw new QmoeException($"{where}: has {t.DType} {t.ShapeText}, expected U32 [65536, 2]");
            return CodeDictionary.FromEntries(MemoryMarshal.Cast<byte, uint>(f.Bytes(t)), where, source);
        }
        if (name == CompressedFormat.DictionaryCostsTensor)
        {
            if (store.Contains(CompressedFormat.DictionaryTrieTensor))
                throw new QmoeException($"{where}: the file also holds '{CompressedFormat.DictionaryTrieTensor}'; a file stores one dictionary");
            if (t.DType != DType.I64 || t.Shape is not [ParameterElements])
                throw new QmoeException($"{where}: has {t.DType} {t.ShapeText}, expected I64 [{ParameterElements}]");
            return FromParameters(MemoryMarshal.Cast<byte, long>(f.Bytes(t)), where, source);
        }
        if (t.DType != DType.U8 || t.Shape.Length != 1)
            throw new QmoeException($"{where}: has {t.DType} {t.ShapeText}, expected U8 [n]");
        return DictionaryTrieMask.Decode(f.Bytes(t), where, source);
    }

    // Regenerated dictionaries by record (a few; files of one writer share one), so reopening a model costs no rebuild.
    private static readonly ConcurrentDictionary<string, CodeDictionary> s_regenerated = new();

    /// <summary>Rebuilds the dictionary of a parameter record (<paramref name="elements"/>: 10, or 17 for four levels),
    /// checking the costs' range and the checksum.</summary>
    public static CodeDictionary FromParameters(ReadOnlySpan<long> record, string where, string? source = null, int elements = ParameterElements)
    {
        if (record.Length != elements) throw new QmoeException($"{where}: dictionary record has {record.Length} elements, expected {elements}");
        var costs = record[..^1];
        for (int s = 0; s < costs.Length; s++)
            if (costs[s] is < 1 or > CodeDictionary.MaxCost)
                throw new QmoeException($"{where}: dictionary pair cost {s} is {costs[s]}, outside 1..2^40");
        string key = string.Join(",", record.ToArray());
        if (!s_regenerated.TryGetValue(key, out var dict))
        {
            dict = CodeDictionary.Build(costs).Canonical();
            ulong actual = Checksum(dict), recorded = (ulong)record[^1];
            if (actual != recorded)
                throw new QmoeException($"{where}: dictionary costs regenerate xxhash64 {actual:x16}, the record says {recorded:x16}");
            if (s_regenerated.Count >= 8) s_regenerated.Clear();
            s_regenerated[key] = dict;
        }
        return dict.WithSource(source ?? where);
    }
}
