using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Qmoe.Text;

/// <summary>
/// SentencePiece's text normalizer: the model's precompiled character map (for <c>nmt_nfkc</c>: NFKC plus
/// removal of control characters and mapping of odd spaces to ' ') applied by longest match over the UTF-8
/// bytes, then whitespace handling (drop leading/trailing/repeated spaces, dummy ' ' prefix, ' ' → '▁').
/// Written here because Microsoft.ML.Tokenizers 2.0.1 does not apply the precompiled map (it keeps BEL
/// characters as unknowns, where SentencePiece removes them), which breaks parity with the fixtures' data.
/// </summary>
internal sealed class SentencePieceNormalizer
{
    public const char SpaceSymbol = '\u2581'; // ▁

    private readonly DoubleArrayTrie? _trie;  // UTF-8 source sequence → offset of its replacement in _pool
    private readonly byte[] _pool = [];       // NUL-terminated UTF-8 replacements
    private readonly bool _addDummyPrefix, _removeExtraWhitespaces, _escapeWhitespaces;

    public SentencePieceNormalizer(SentencePieceModel model)
    {
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        byte[] map = model.PrecompiledCharsMap;
        if (map.Length == 0) return;
        // Blob: uint32 LE trie size in bytes, the Darts-clone double array, then the replacement pool.
        uint trieBytes = map.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(map) : uint.MaxValue;
        if (trieBytes % 4 != 0 || trieBytes > map.Length - 4)
            throw new FormatException("precompiled_charsmap is malformed");
        _trie = new DoubleArrayTrie(map.AsSpan(4, (int)trieBytes));
        _pool = map[(4 + (int)trieBytes)..];
    }

    /// <summary>The normalized text, with '▁' for spaces when the model escapes whitespace.</summary>
    public string Normalize(string text)
    {
        ReadOnlySpan<byte> input = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(input.Length + 8);
        ReadOnlySpan<byte> space = _escapeWhitespaces ? "\u2581"u8 : " "u8;

        if (_removeExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                var replacement = NormalizePrefix(input, out int consumed);
                if (!replacement.SequenceEqual(" "u8)) break;
                input = input[consumed..];
            }
        }
        if (input.IsEmpty) return "";
        if (_addDummyPrefix) output.AddRange(space);

        bool prevSpace = _removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            var replacement = NormalizePrefix(input, out int consumed);
            if (prevSpace) replacement = replacement.TrimStart((byte)' ');
            if (!replacement.IsEmpty)
            {
                foreach (byte b in replacement)
                {
                    if (b == ' ') output.AddRange(space);
                    else output.Add(b);
                }
                prevSpace = replacement[^1] == ' ';
            }
            input = input[consumed..];
            if (!_removeExtraWhitespaces) prevSpace = false;
        }
        ReadOnlySpan<byte> normalized = CollectionsMarshal.AsSpan(output);
        if (_removeExtraWhitespaces)
            while (normalized.EndsWith(space)) normalized = normalized[..^space.Length];
        return Encoding.UTF8.GetString(normalized);
    }

    /// <summary>The replacement of the longest mapped prefix of <paramref name="input"/>, or its first character unchanged.</summary>
    private ReadOnlySpan<byte> NormalizePrefix(ReadOnlySpan<byte> input, out int consumed)
    {
        if (_trie != null && _trie.LongestPrefix(input, out consumed, out int value))
        {
            if ((uint)value >= (uint)_pool.Length) throw new FormatException("precompiled_charsmap value out of range");
            ReadOnlySpan<byte> rest = _pool.AsSpan(value);
            int nul = rest.IndexOf((byte)0);
            return nul < 0 ? rest : rest[..nul];
        }
        // Input came from a .NET string, so it is valid UTF-8: copy one whole character.
        consumed = Math.Min(input[0] < 0x80 ? 1 : input[0] < 0xE0 ? 2 : input[0] < 0xF0 ? 3 : 4, input.Length);
        return input[..consumed];
    }
}
