using BenchmarkDotNet.Attributes;
using Qmoe.Text;

namespace Qmoe.Bench;

/// <summary>
/// Encoding speed of each tokenizer kind on one thread, as <c>bench tokenize --text validation.txt</c> measures it:
/// one operation encodes every non-empty line of the shared fixtures' data/text/validation.txt (164,401 chars in 586
/// lines) without special tokens, so chars/s = 164,401 / mean time. The word caches are warm (as in steady use).
/// Kinds: SentencePiece unigram (embedded switch-tiny-8, t5-legal), SentencePiece BPE (mistral-v01 tokenizer.model),
/// Hugging Face BPE (qwen2, olmoe, deepseek-coder byte-level; mistral-v03 Metaspace, BPE over whole lines).
/// </summary>
[MemoryDiagnoser]
public class TokenizerBenchmarks
{
    [Params("switch-tiny-8", "t5-legal", "mistral-v01", "qwen2", "olmoe", "deepseek-coder", "mistral-v03")]
    public string Tokenizer = "";

    private ITokenizer _tokenizer = null!;
    private string[] _lines = [];

    [GlobalSetup]
    public void Setup()
    {
        string dir = Tokenizer == "switch-tiny-8" ? Path.Combine(BenchPaths.Root, "models", "switch-tiny-8") : BenchPaths.Fixture("tokenizers", Tokenizer);
        _tokenizer = TokenizerLoader.ForDirectory(dir);
        _lines = File.ReadAllLines(BenchPaths.Fixture("data", "text", "validation.txt")).Where(l => l.Length > 0).ToArray();
        Console.WriteLine($"{Tokenizer} ({_tokenizer.Kind}): {_lines.Sum(l => (long)l.Length)} chars per operation");
        Encode();
    }

    [Benchmark]
    public int Encode()
    {
        int tokens = 0;
        foreach (string line in _lines) tokens += _tokenizer.Encode(line, addSpecialTokens: false).Length;
        return tokens;
    }
}
