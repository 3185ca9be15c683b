using System.Text;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// GPT-2's byte-to-character table: every byte becomes one printable character (bytes '!'..'~', 0xA1..0xAC and
/// 0xAE..0xFF map to themselves; the other 68 to U+0100 + n in byte order), so byte-level BPE works on text.
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>Byte → its character.</summary>
    public static readonly char[] ByteToChar = Build();
    /// <summary>Character → its byte, or -1 (indexed up to U+0143, the largest character of the table).</summary>
    public static readonly short[] CharToByte = Invert(ByteToChar);

    private static char[] Build()
    {
        var table = new char[256];
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)(256 + n++);
        }
        return table;
    }

    private static short[] Invert(char[] byteToChar)
    {
        var inverse = new short[byteToChar.Max() + 1];
        Array.Fill(inverse, (short)-1);
        for (int b = 0; b < 256; b++) inverse[byteToChar[b]] = (short)b;
        return inverse;
    }

    /// <summary>The UTF-8 bytes of <paramref name="text"/> as table characters.</summary>
    public static string Map(string text)
    {
        int max = Encoding.UTF8.GetMaxByteCount(text.Length);
        Span<byte> bytes = max <= 1024 ? stackalloc byte[max] : new byte[max];
        int n = Encoding.UTF8.GetBytes(text, bytes);
        Span<char> chars = n <= 1024 ? stackalloc char[n] : new char[n];
        for (int i = 0; i < n; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Hugging Face's ByteLevel decoder on one token: its characters' bytes, or the token's own UTF-8
    /// bytes when any character is outside the table.</summary>
    public static void AppendBytes(string token, List<byte> output)
    {
        foreach (char c in token)
        {
            if (c >= CharToByte.Length || CharToByte[c] < 0)
            {
                output.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
        }
        foreach (char c in token) output.Add((byte)CharToByte[c]);
    }
}
