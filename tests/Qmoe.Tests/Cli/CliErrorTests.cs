using Qmoe.Cli;

namespace Qmoe.Tests.Cli;

/// <summary>Every exception a verb throws becomes one "error: ..." line; --verbose adds the trace.</summary>
public class CliErrorTests
{
    [Fact]
    public void UnexpectedExceptionsAreOneLineAndMarkedInternal()
    {
        Assert.Equal("bad field", CliRunner.Describe(new QmoeException("bad\nfield")));
        var internalError = CliRunner.Describe(new InvalidOperationException("boom"));
        Assert.StartsWith("internal: InvalidOperationException: boom", internalError);
        Assert.DoesNotContain('\n', CliRunner.Describe(new IndexOutOfRangeException("a\r\nb")));
    }

    [Fact]
    public void RunReturnsExitCodeTwoForADefect()
    {
        var err = Console.Error;
        var sw = new StringWriter();
        Console.SetError(sw);
        try { Assert.Equal(2, CliRunner.Run(false, _ => throw new NullReferenceException("x"))); }
        finally { Console.SetError(err); }
        Assert.Single(sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void VerboseAddsTheTrace()
    {
        CliProcess.AssertRefused(CliProcess.Run("generate", "--model", "/nonexistent-model-dir", "--prompt", "x"), "model directory not found");
        var r = CliProcess.Run("generate", "--model", "/nonexistent-model-dir", "--prompt", "x", "--verbose");
        Assert.NotEqual(0, r.ExitCode);
        Assert.StartsWith("error: /nonexistent-model-dir: model directory not found", r.Stderr);
        Assert.Contains("   at ", r.Stderr);
    }
}
