using System.Globalization;
using System.Text;

namespace Qmoe.Text.HuggingFace;

/// <summary>
/// Rust regex's Unicode <c>\w</c> (Alphabetic, marks, decimal digits, connector punctuation, Join_Control), which
/// Hugging Face uses for <c>single_word</c> added tokens and the Whitespace pre-tokenizer. Alphabetic is taken as the
/// letters and letter numbers plus the circled/squared Latin letters (Other_Alphabetic symbols); its other
/// Other_Alphabetic members are marks, already included.
/// </summary>
internal static class RustWordChar
{
    public static bool IsWord(Rune r)
    {
        if (r.Value is 0x200C or 0x200D || r.Value is >= 0x24B6 and <= 0x24E9 || r.Value is >= 0x1F130 and <= 0x1F149
            || r.Value is >= 0x1F150 and <= 0x1F169 || r.Value is >= 0x1F170 and <= 0x1F189) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter
            or UnicodeCategory.TitlecaseLetter or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.ConnectorPunctuation;
    }
}
