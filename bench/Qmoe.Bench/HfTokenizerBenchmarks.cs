using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Qmoe.Text.HuggingFace;

namespace Qmoe.Bench;

/// <summary>
/// Encoding speed of each shared-fixture tokenizer.json kind on one thread: one operation encodes every line of the
/// public corpus (../shared/fixtures/tokenizers/corpus.jsonl, 52,423 UTF-16 characters in 1,565 lines) without special
/// tokens, so chars/s = 52,423 / mean time. The word cache is warm (as in steady use). Needs the shared fixtures
/// (beside the clone or QMOE_FIXTURES).
/// </summary>
[MemoryDiagnoser]
public class HfTokenizerBenchmarks
{
    [Params("qwen2", "olmoe", "deepseek-coder", "mistral-v03")] public string Fixture = "";

    private HfTokenizer _tokenizer = null!;
    private string[] _lines = [];

    public static string FixturesRoot()
    {
        var env = Environment.GetEnvironmentVariable("QMOE_FIXTURES");
        if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Qmoe.slnx"))) return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures"));
        throw new InvalidOperationException("shared fixtures not found (set QMOE_FIXTURES)");
    }

    [GlobalSetup]
    public void Setup()
    {
        string root = Path.Combine(FixturesRoot(), "tokenizers");
        _tokenizer = HfTokenizer.Load(Path.Combine(root, Fixture, "tokenizer.json"));
        _lines = File.ReadLines(Path.Combine(root, "corpus.jsonl")).Select(l => JsonSerializer.Deserialize<string>(l)!).ToArray();
        Corpus();
    }

    [Benchmark]
    public int Corpus()
    {
        int n = 0;
        foreach (var line in _lines) n += _tokenizer.Encode(line, false).Length;
        return n;
    }
}
