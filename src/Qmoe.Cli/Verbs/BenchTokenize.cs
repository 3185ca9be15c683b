using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Text;

namespace Qmoe.Cli;

/// <summary>
/// <c>bench tokenize [--model DIR ...] [--text FILE] [--seconds S] [--json]</c>: encoding speed (chars/s, one thread) of
/// each tokenizer: the embedded switch-tiny-8 <c>spiece.model</c>, every loadable directory of the shared tokenizer
/// fixtures (../shared/fixtures/tokenizers or $QMOE_FIXTURES/tokenizers) when present, and any <c>--model</c> given.
/// </summary>
internal static class BenchTokenize
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model") { Description = "further checkpoint or tokenizer directories", AllowMultipleArgumentsPerToken = true };
        var text = new Option<string?>("--text") { Description = "text to encode, one input per line (default: data/calibration.txt)" };
        var seconds = new Option<double>("--seconds") { Description = "timed seconds per tokenizer (the text is encoded over and over)", DefaultValueFactory = _ => 2.0 };
        var json = CommonOptions.Json();
        var cmd = new Command("tokenize", "encoding speed in chars/s of each tokenizer kind on one thread") { models, text, seconds, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            double secs = p.GetValue(seconds);
            if (!(secs > 0)) throw new QmoeException($"--seconds {secs} must be positive");
            string textFile = p.GetValue(text) ?? RepoPaths.CalibrationText;
            if (!File.Exists(textFile)) throw new QmoeException($"{textFile}: text file not found");
            string[] lines = File.ReadAllLines(textFile).Where(l => l.Length > 0).ToArray();
            if (lines.Length == 0) throw new QmoeException($"{textFile}: no text");
            var dirs = new List<string> { RepoPaths.TinyModel };
            if (FixtureTokenizers() is { } fixtures) dirs.AddRange(Directory.GetDirectories(fixtures).Order());
            dirs.AddRange(p.GetValue(models) ?? []);

            human.WriteLine($"encoding {Path.GetFileName(textFile)} ({lines.Sum(l => (long)l.Length)} chars in {lines.Length} lines), one thread, {secs} s each");
            human.WriteLine("wall: elapsed time; cpu: this process's CPU time (steadier on a shared machine)");
            human.WriteLine($"{"tokenizer",-20} {"kind",-24} {"M chars/s wall",15} {"M chars/s cpu",14} {"M tokens/s cpu",15}");
            var results = new JsonArray();
            foreach (string dir in dirs)
            {
                ITokenizer tokenizer;
                try { tokenizer = TokenizerLoader.ForDirectory(dir); }
                catch (QmoeException e) { human.WriteLine($"{Path.GetFileName(dir),-28} skipped: {e.Message}"); continue; }
                var (chars, tokens, elapsed, cpu) = Measure(tokenizer, lines, secs);
                string name = Path.GetFileName(dir.TrimEnd('/'));
                human.WriteLine($"{name,-20} {tokenizer.Kind,-24} {chars / elapsed / 1e6,15:F2} {chars / cpu / 1e6,14:F2} {tokens / cpu / 1e6,15:F2}");
                results.Add(new JsonObject
                {
                    ["tokenizer"] = name, ["kind"] = tokenizer.Kind,
                    ["chars_per_s"] = chars / elapsed, ["chars_per_cpu_s"] = chars / cpu, ["tokens_per_cpu_s"] = tokens / cpu,
                    ["chars_per_token"] = (double)chars / tokens,
                });
            }
            return new JsonObject { ["text"] = Path.GetFileName(textFile), ["threads"] = 1, ["results"] = results };
        }));
        return cmd;
    }

    /// <summary>Encodes the lines over and over (after one warm-up pass) until <paramref name="seconds"/> have passed.</summary>
    private static (long Chars, long Tokens, double Seconds, double CpuSeconds) Measure(ITokenizer tokenizer, string[] lines, double seconds)
    {
        foreach (string line in lines) tokenizer.Encode(line, addSpecialTokens: false);
        long chars = 0, tokens = 0;
        var process = Process.GetCurrentProcess();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        do
        {
            foreach (string line in lines)
            {
                tokens += tokenizer.Encode(line, addSpecialTokens: false).Length;
                chars += line.Length;
            }
        } while (sw.Elapsed.TotalSeconds < seconds);
        double wall = sw.Elapsed.TotalSeconds;
        process.Refresh();
        return (chars, tokens, wall, Math.Max((process.TotalProcessorTime - cpu0).TotalSeconds, 1e-9));
    }

    private static string? FixtureTokenizers()
    {
        string? env = Environment.GetEnvironmentVariable("QMOE_FIXTURES");
        foreach (string? root in new[] { env, Path.Combine(RepoPaths.Root, "..", "shared", "fixtures") })
            if (!string.IsNullOrEmpty(root) && Directory.Exists(Path.Combine(root, "tokenizers"))) return Path.GetFullPath(Path.Combine(root, "tokenizers"));
        return null;
    }
}
