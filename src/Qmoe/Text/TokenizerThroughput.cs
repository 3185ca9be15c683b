using System.Diagnostics;

namespace Qmoe.Text;

/// <summary>
/// Encoding speed of a tokenizer on one thread: characters of <c>texts</c> encoded per second (wall clock), over
/// whole passes of the texts until at least a minimum time has passed, after one warm-up pass (fills word caches as
/// steady-state use does). For the <c>bench tokenize</c> verb; BenchmarkDotNet's HfTokenizerBenchmarks and SentencePieceBenchmarks measure the same.
/// </summary>
public static class TokenizerThroughput
{
    public static double CharsPerSecond(ITokenizer tokenizer, IReadOnlyList<string> texts, TimeSpan minimum, bool addSpecialTokens = false)
    {
        long chars = 0;
        foreach (var t in texts) chars += t.Length;
        if (chars == 0) throw new ArgumentException("no text to encode", nameof(texts));
        foreach (var t in texts) tokenizer.Encode(t, addSpecialTokens);
        var clock = Stopwatch.StartNew();
        long passes = 0;
        do
        {
            foreach (var t in texts) tokenizer.Encode(t, addSpecialTokens);
            passes++;
        } while (clock.Elapsed < minimum);
        return chars * passes / clock.Elapsed.TotalSeconds;
    }
}
