namespace Qmoe.Runtime;

/// <summary>Result of an evaluation run (the JSON of <c>qmoe eval</c>).</summary>
public sealed record EvalResult(string Split, int Examples, long Tokens, double MeanCe, double Seconds)
{
    /// <summary>Evaluated tokens per second: encoder + decoder tokens for Switch, block tokens for decoder-only.</summary>
    public double TokensPerSecond { get; init; }
}
