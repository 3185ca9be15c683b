using System.Buffers.Binary;
using System.Text;

namespace Qmoe.Text;

/// <summary>
/// SentencePiece's text normalizer: user-defined pieces pass through untouched (longest match first), then the
/// model's precompiled character map (for <c>nmt_nfkc</c>: NFKC plus removal of control characters and mapping
/// of odd spaces to ' ') applied by longest match over the UTF-8 bytes, then whitespace handling (drop
/// leading/trailing/repeated spaces, dummy ' ' prefix — or suffix with treat_whitespace_as_suffix —, ' ' → '▁').
/// Written here because Microsoft.ML.Tokenizers 2.0.1 does not apply the precompiled map (it keeps BEL
/// characters as unknowns, where SentencePiece removes them), which breaks parity with the fixtures' data.
/// Immutable and thread-safe; each call works in thread-local scratch buffers.
/// </summary>
internal sealed class SentencePieceNormalizer
{
    public const char SpaceSymbol = '\u2581'; // ▁

    private readonly DoubleArrayTrie? _trie;  // UTF-8 source sequence → offset of its replacement in _pool
    private readonly byte[] _pool = [];       // NUL-terminated UTF-8 replacements
    private readonly PieceTrie? _userDefined; // user-defined pieces over UTF-8 bytes
    private readonly bool _addDummyPrefix, _removeExtraWhitespaces, _escapeWhitespaces, _suffix;
    // ASCII fast path: for a byte b < 0x80 that starts no longer map key and no user-defined piece,
    // _asciiReplacement[b] is its replacement (the map's one-byte entry or b itself).
    private readonly byte[]?[] _asciiReplacement = new byte[128][];

    public SentencePieceNormalizer(SentencePieceModel model, PieceTrie? userDefinedUtf8 = null)
    {
        _addDummyPrefix = model.AddDummyPrefix;
        _removeExtraWhitespaces = model.RemoveExtraWhitespaces;
        _escapeWhitespaces = model.EscapeWhitespaces;
        _suffix = model.TreatWhitespaceAsSuffix;
        _userDefined = userDefinedUtf8 is { KeyCount: > 0 } ? userDefinedUtf8 : null;
        byte[] map = model.PrecompiledCharsMap;
        if (map.Length > 0)
        {
            // Blob: uint32 LE trie size in bytes, the Darts-clone double array, then the replacement pool.
            uint trieBytes = map.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(map) : uint.MaxValue;
            if (trieBytes % 4 != 0 || trieBytes > map.Length - 4)
                throw new FormatException("precompiled_charsmap is malformed");
            _trie = new DoubleArrayTrie(map.AsSpan(4, (int)trieBytes));
            _pool = map[(4 + (int)trieBytes)..];
        }
        for (int b = 0; b < 128; b++)
        {
            if (_userDefined?.AnyKeyStartsWith((byte)b) == true || _trie?.HasLongerKey((byte)b) == true) continue;
            byte[] one = [(byte)b];
            _asciiReplacement[b] = MapPrefix(one, out _).ToArray();
        }
    }

    /// <summary>The normalized text, with '▁' for spaces when the model escapes whitespace.</summary>
    public string Normalize(string text)
    {
        var output = new CharBuffer();
        Normalize(text, output);
        return output.Span.ToString();
    }

    /// <summary>Writes the normalized text of <paramref name="text"/> to <paramref name="output"/> (cleared first).</summary>
    public void Normalize(ReadOnlySpan<char> text, CharBuffer output)
    {
        output.Clear();
        var scratch = t_scratch ??= new Scratch();
        // Lone surrogates become U+FFFD here, as UTF-8 has no encoding for them.
        int inLength = Encoding.UTF8.GetMaxByteCount(text.Length);
        if (scratch.In.Length < inLength) scratch.In = new byte[Math.Max(inLength, 2 * scratch.In.Length)];
        ReadOnlySpan<byte> input = scratch.In.AsSpan(0, Encoding.UTF8.GetBytes(text, scratch.In));
        var bytes = scratch.Out;
        bytes.Clear();
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
        if (input.IsEmpty) return;
        if (_addDummyPrefix && !_suffix) bytes.Append(space);

        bool prevSpace = _removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            var replacement = NormalizePrefix(input, out int consumed);
            if (prevSpace) replacement = replacement.TrimStart((byte)' ');
            if (!replacement.IsEmpty)
            {
                if (replacement.Length == 1 && replacement[0] != ' ') bytes.Append(replacement[0]);
                else
                    foreach (byte b in replacement)
                    {
                        if (b == ' ') bytes.Append(space);
                        else bytes.Append(b);
                    }
                prevSpace = replacement[^1] == ' ';
            }
            input = input[consumed..];
            if (!_removeExtraWhitespaces) prevSpace = false;
        }
        int length = bytes.Length;
        if (_removeExtraWhitespaces)
            while (bytes.Span[..length].EndsWith(space)) length -= space.Length;
        bytes.Length = length;
        if (_addDummyPrefix && _suffix) bytes.Append(space);
        output.AppendUtf8(bytes.Span);
    }

    /// <summary>
    /// The replacement of the longest prefix of <paramref name="input"/>: a user-defined piece unchanged, else
    /// the longest mapped sequence, else its first character unchanged.
    /// </summary>
    private ReadOnlySpan<byte> NormalizePrefix(ReadOnlySpan<byte> input, out int consumed)
    {
        byte first = input[0];
        if (first < 0x80 && _asciiReplacement[first] is { } fast) { consumed = 1; return fast; }
        if (_userDefined != null && (consumed = _userDefined.LongestPrefix(input, out _)) > 0) return input[..consumed];
        return MapPrefix(input, out consumed);
    }

    private ReadOnlySpan<byte> MapPrefix(ReadOnlySpan<byte> input, out int consumed)
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

    private sealed class Scratch
    {
        public byte[] In = new byte[256];
        public readonly ByteBuffer Out = new();
    }

    [ThreadStatic] private static Scratch? t_scratch;
}

/// <summary>A growable byte buffer reused across calls.</summary>
internal sealed class ByteBuffer
{
    private byte[] _data = new byte[256];
    public int Length { get; set; }
    public Span<byte> Span => _data.AsSpan(0, Length);
    public void Clear() => Length = 0;

    public void Append(byte b)
    {
        if (Length == _data.Length) Array.Resize(ref _data, 2 * _data.Length);
        _data[Length++] = b;
    }

    public void Append(ReadOnlySpan<byte> bytes)
    {
        if (Length + bytes.Length > _data.Length) Array.Resize(ref _data, Math.Max(2 * _data.Length, Length + bytes.Length));
        bytes.CopyTo(_data.AsSpan(Length));
        Length += bytes.Length;
    }
}

/// <summary>A growable char buffer reused across calls.</summary>
internal sealed class CharBuffer
{
    private char[] _data = new char[256];
    public int Length { get; private set; }
    public ReadOnlySpan<char> Span => _data.AsSpan(0, Length);
    public void Clear() => Length = 0;

    /// <summary>Appends UTF-8 <paramref name="utf8"/> decoded (invalid sequences become U+FFFD).</summary>
    public void AppendUtf8(ReadOnlySpan<byte> utf8)
    {
        int need = Length + utf8.Length; // UTF-8 never decodes to more chars than bytes
        if (need > _data.Length) Array.Resize(ref _data, Math.Max(need, 2 * _data.Length));
        Length += Encoding.UTF8.GetChars(utf8, _data.AsSpan(Length));
    }
}
