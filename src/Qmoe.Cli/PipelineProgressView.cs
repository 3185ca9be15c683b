using Qmoe.Compression;
using Spectre.Console;

namespace Qmoe.Cli;

/// <summary>
/// Shows pipeline progress: a Spectre.Console progress bar (blocks, current step, RSS, ETA) on an interactive
/// terminal; plain timestamped lines on stderr when output is redirected (logs, CI).
/// </summary>
internal static class PipelineProgressView
{
    public static T Run<T>(TextWriter human, Func<Action<PipelineProgress>, T> work)
    {
        bool interactive = !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        if (!interactive)
        {
            var start = DateTime.UtcNow;
            return work(p => human.WriteLine(
                $"[{(DateTime.UtcNow - start).TotalSeconds,7:F1}s] {(p.Blocks > 0 ? $"block {p.Block + 1}/{p.Blocks} " : "")}{p.Message}  (RSS {Rss()})"));
        }
        T result = default!;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("compress", maxValue: 1);
                result = work(p =>
                {
                    if (p.Blocks > 0) { task.MaxValue = p.Blocks; task.Value = p.Block; }
                    task.Description = Markup.Escape($"{p.Message} (RSS {Rss()})");
                });
                task.Value = task.MaxValue;
            });
        return result;
    }

    private static string Rss()
    {
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return $"{p.WorkingSet64 / (1 << 20)} MiB";
    }
}
