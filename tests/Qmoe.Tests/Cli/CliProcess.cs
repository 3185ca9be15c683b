using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Qmoe.Tests.Cli;

/// <summary>Runs the real CLI (Qmoe.Cli.dll beside the tests) as a child process.</summary>
public static class CliProcess
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public JsonObject Json => JsonNode.Parse(Stdout)!.AsObject();
    }

    public static Result Run(params string[] args) => RunWithEnv(null, args);

    public static Result RunWithEnv(IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Qmoe.Cli.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (env != null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException($"qmoe {string.Join(' ', args)} timed out"); }
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>
    /// Asserts a clean refusal: non-zero exit and stderr ending in exactly one "error: ..."
    /// line containing <paramref name="expected"/> (progress lines may precede it), no stack trace.
    /// </summary>
    public static void AssertRefused(Result r, string expected)
    {
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0 && lines.Count(l => l.StartsWith("error: ")) == 1 && lines[^1].StartsWith("error: "),
            $"expected one final error line, got:\n{r.Stderr}");
        Assert.Contains(expected, lines[^1]);
        Assert.DoesNotContain("   at ", r.Stderr);
    }
}
