using System.Buffers.Binary;

namespace Qmoe.Text;

/// <summary>
/// Read-only lookup in a Darts-clone double-array trie, the format of SentencePiece's precompiled character
/// map. Each 32-bit unit packs: bits 0–7 label (bit 31 set for a value unit), bit 8 has-leaf, bit 9 offset
/// scale (offset &lt;&lt;= 8), bits 10–31 offset. A value unit holds the key's value in bits 0–30.
/// </summary>
internal sealed class DoubleArrayTrie
{
    private readonly uint[] _units;

    public DoubleArrayTrie(ReadOnlySpan<byte> bytes)
    {
        _units = new uint[bytes.Length / 4];
        for (int i = 0; i < _units.Length; i++) _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes[(4 * i)..]);
        if (_units.Length == 0) throw new FormatException("empty double-array trie");
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
    private static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);
    private static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;
    private static int Value(uint unit) => (int)(unit & ((1u << 31) - 1));

    /// <summary>Whether some key longer than one byte starts with byte <paramref name="first"/>.</summary>
    public bool HasLongerKey(byte first)
    {
        uint pos = Offset(_units[0]) ^ first;
        if (pos >= (uint)_units.Length || Label(_units[pos]) != first) return false;
        uint node = pos ^ Offset(_units[pos]);
        for (uint label = 1; label < 256; label++)
        {
            uint child = node ^ label;
            if (child < (uint)_units.Length && Label(_units[child]) == label) return true;
        }
        return false;
    }

    /// <summary>The longest key that is a prefix of <paramref name="key"/>: its length and value.</summary>
    public bool LongestPrefix(ReadOnlySpan<byte> key, out int length, out int value)
    {
        length = 0; value = 0;
        uint pos = Offset(_units[0]);
        for (int i = 0; i < key.Length; i++)
        {
            pos ^= key[i];
            if (pos >= (uint)_units.Length) break;
            uint unit = _units[pos];
            if (Label(unit) != key[i]) break;
            pos ^= Offset(unit);
            if (pos >= (uint)_units.Length) break;
            if (HasLeaf(unit)) { length = i + 1; value = Value(_units[pos]); }
        }
        return length > 0;
    }
}
