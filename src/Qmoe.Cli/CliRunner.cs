using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qmoe.Cli;

/// <summary>
/// Common behaviour of every verb: with <c>--json</c>, exactly one JSON object on stdout and all human text on
/// stderr; bad input (a <see cref="QmoeException"/>) becomes a one-line "error: ..." and exit code 1; any other
/// exception (a defect) becomes a one-line "error: internal: ..." and exit code 2. <c>--verbose</c> adds the trace.
/// </summary>
internal static class CliRunner
{
    /// <summary>Set from the global <c>--verbose</c> option: print stack traces after the one-line error.</summary>
    public static bool Verbose { get; set; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = false,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Runs a verb body that returns its JSON result (or null when it prints nothing structured).</summary>
    public static int Run(bool json, Func<TextWriter, JsonObject?> body)
    {
        // Human-readable output goes to stdout normally, to stderr when stdout carries JSON.
        TextWriter human = json ? Console.Error : Console.Out;
        try
        {
            var result = body(human);
            if (json && result != null) Console.Out.WriteLine(result.ToJsonString(JsonOptions));
            return 0;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: cancelled");
            return 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {Describe(e)}");
            if (Verbose) Console.Error.WriteLine(e);
            return e is QmoeException or IOException or UnauthorizedAccessException ? 1 : 2;
        }
    }

    /// <summary>One line for any exception: bad input and I/O errors by their message, anything else (a defect)
    /// marked internal with its type.</summary>
    public static string Describe(Exception e) => e switch
    {
        QmoeException or IOException or UnauthorizedAccessException => OneLine(e.Message),
        OutOfMemoryException => "out of memory",
        _ => $"internal: {e.GetType().Name}: {OneLine(e.Message)} (run with --verbose for the trace)",
    };

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
