using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qmoe.Cli;

/// <summary>
/// Common behaviour of every verb: with <c>--json</c>, exactly one JSON object on stdout and all human text on
/// stderr; bad input (a <see cref="QmoeException"/>) becomes a one-line "error: ..." and exit code 1.
/// </summary>
internal static class CliRunner
{
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
        catch (QmoeException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: cancelled");
            return 130;
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return 1;
        }
        catch (UnauthorizedAccessException e)
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            return 1;
        }
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
