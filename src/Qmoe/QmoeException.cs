namespace Qmoe;

/// <summary>
/// The one exception type the library throws for bad input (corrupt or truncated files, wrong shapes or
/// dtypes, unsupported configs, out-of-range ids). Its message is a single line naming the file, tensor
/// or field at fault, suitable to print as the CLI's error.
/// </summary>
public class QmoeException : Exception
{
    public QmoeException(string message) : base(message) { }
    public QmoeException(string message, Exception inner) : base(message, inner) { }
}
