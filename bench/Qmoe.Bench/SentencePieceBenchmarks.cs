using BenchmarkDotNet.Attributes;
using Qmoe.Text;

namespace Qmoe.Bench;

/// <summary>
/// Encoding the embedded calibration text (one paragraph per call, one thread) with each tokenizer kind: the
/// embedded switch-tiny-8 <c>spiece.model</c> (unigram, nmt_nfkc) and, from the shared fixtures, the Mistral-7B-v0.1
/// <c>tokenizer.model</c> (BPE, byte fallback). chars/s = <see cref="Chars"/> / the reported mean time.
/// </summary>
[MemoryDiagnoser]
public class SentencePieceBenchmarks
{
    private ITokenizer _tokenizer = null!;
    private string[] _lines = [];

    [Params("switch-tiny-8 spiece.model", "mistral-v01 tokenizer.model")] public string Model = "";

    /// <summary>Characters encoded per benchmark call.</summary>
    public long Chars => _lines.Sum(l => (long)l.Length);

    [GlobalSetup]
    public void Setup()
    {
        string root = FindRoot();
        string fixtures = Environment.GetEnvironmentVariable("QMOE_FIXTURES") ?? Path.Combine(root, "..", "shared", "fixtures");
        string path = Model.StartsWith("switch")
            ? Path.Combine(root, "models", "switch-tiny-8", "spiece.model")
            : Path.Combine(fixtures, "tokenizers", "mistral-v01", "tokenizer.model");
        if (!File.Exists(path)) throw new InvalidOperationException($"{path} not found: set QMOE_FIXTURES");
        _tokenizer = SentencePieceTokenizer.Load(path);
        _lines = File.ReadAllLines(Path.Combine(root, "data", "calibration.txt")).Where(l => l.Length > 0).Take(200).ToArray();
        Console.WriteLine($"{Model}: {Chars} chars per call");
    }

    [Benchmark]
    public int EncodeParagraphs()
    {
        int tokens = 0;
        foreach (string line in _lines) tokens += _tokenizer.Encode(line, addSpecialTokens: false).Length;
        return tokens;
    }

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Qmoe.slnx"))) return d.FullName;
        throw new InvalidOperationException("repository root not found");
    }
}
