namespace Qmoe;

/// <summary>
/// The one exception type the library throws for bad input (corrupt or truncated files, wrong shapes or
/// dtypes, unsupported configs, out-of-range ids). Its message is a single line naming the file, tensor
/// or field at fault, suitable to print as the CLI's error. Line breaks in a message (an embedded JSON value or
/// template excerpt) become spaces, so the single line holds whatever a message quotes from the input.
/// </summary>
public class QmoeException : Exception
{
    public QmoeException(string message) : base(OneLine(message)) { }
    public QmoeException(string message, Exception inner) : base(OneLine(message), inner) { }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}
