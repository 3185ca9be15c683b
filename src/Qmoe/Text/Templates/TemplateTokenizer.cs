using System.Globalization;
using System.Text;

namespace Qmoe.Text.Templates;

/// <summary>Tokenizes the inside of a tag: names, string literals (with Python escapes), numbers and operators.</summary>
public static class TemplateTokenizer
{
    private static readonly string[] Operators =
        ["==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "~"];

    public static List<TemplateToken> Tokenize(string s)
    {
        var tokens = new List<TemplateToken>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (char.IsLetter(c) || c == '_')
            {
                int start = i;
                while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_')) i++;
                tokens.Add(new TemplateToken(TokenKind.Name, s[start..i]));
                continue;
            }
            if (char.IsAsciiDigit(c))
            {
                int start = i;
                while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '_')) i++;
                bool isFloat = i + 1 < s.Length && s[i] == '.' && char.IsAsciiDigit(s[i + 1]);
                if (isFloat) { i++; while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
                string text = s[start..i].Replace("_", "");
                tokens.Add(isFloat
                    ? new TemplateToken(TokenKind.Float, text, double.Parse(text, CultureInfo.InvariantCulture))
                    : new TemplateToken(TokenKind.Integer, text, long.TryParse(text, CultureInfo.InvariantCulture, out long v) ? v
                        : throw new QmoeException($"chat template: integer {text} is too large")));
                continue;
            }
            if (c == '\'' || c == '"') { tokens.Add(new TemplateToken(TokenKind.String, s.Substring(i, 1), ReadString(s, ref i))); continue; }
            var op = Operators.FirstOrDefault(o => string.CompareOrdinal(s, i, o, 0, o.Length) == 0)
                ?? throw new QmoeException($"chat template: unexpected character '{c}' in '{s.Trim()}'");
            tokens.Add(new TemplateToken(TokenKind.Operator, op));
            i += op.Length;
        }
        tokens.Add(new TemplateToken(TokenKind.End, ""));
        return tokens;
    }

    private static string ReadString(string s, ref int i)
    {
        char quote = s[i++];
        var sb = new StringBuilder();
        while (true)
        {
            if (i >= s.Length) throw new QmoeException($"chat template: unterminated string in '{s.Trim()}'");
            char c = s[i++];
            if (c == quote) return sb.ToString();
            if (c != '\\' || i >= s.Length) { sb.Append(c); continue; }
            char e = s[i++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case '\n': break;
                case 'u' when i + 4 <= s.Length && int.TryParse(s.AsSpan(i, 4), NumberStyles.HexNumber, null, out int u):
                    sb.Append((char)u); i += 4; break;
                default: sb.Append('\\').Append(e); break;
            }
        }
    }
}
