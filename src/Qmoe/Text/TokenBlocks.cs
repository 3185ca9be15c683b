using System.IO.Compression;

namespace Qmoe.Text;

/// <summary>
/// The fixtures' pre-training stream: every paragraph (one per line, blank lines skipped) is tokenised
/// without special tokens and the tokenizer's (first) eos appended, the ids are concatenated, and the stream is cut into consecutive blocks of
/// <c>blockLength</c> tokens; a trailing partial block is dropped.
/// </summary>
public static class TokenBlocks
{
    /// <summary>The paragraphs of a text file (one per line; <c>.gz</c> is decompressed), blank lines skipped.</summary>
    public static IEnumerable<string> ReadParagraphs(string path)
    {
        if (!File.Exists(path)) throw new QmoeException($"{path}: text file not found");
        return Read(path);

        static IEnumerable<string> Read(string path)
        {
            using Stream file = File.OpenRead(path);
            using Stream text = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(file, CompressionMode.Decompress) : file;
            using var reader = new StreamReader(text);
            string? line;
            while (true)
            {
                try { line = reader.ReadLine(); }
                catch (InvalidDataException e) { throw new QmoeException($"{path}: corrupt gzip data ({e.Message})", e); }
                if (line == null) yield break;
                if (!string.IsNullOrWhiteSpace(line)) yield return line;
            }
        }
    }

    /// <summary>
    /// Up to <paramref name="maxBlocks"/> blocks of <paramref name="blockLength"/> ids from <paramref name="paragraphs"/>
    /// (fewer when the text runs out; tokenisation stops as soon as enough blocks are filled).
    /// Returns [blocks, blockLength] row-major.
    /// </summary>
    public static int[] Build(ITokenizer tokenizer, IEnumerable<string> paragraphs, int blockLength, int maxBlocks, out int blocks)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockLength, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBlocks);
        if (tokenizer.Special.Eos.Count == 0) throw new QmoeException("the tokenizer has no eos token to end paragraphs with");
        int eos = tokenizer.Special.Eos[0];
        var stream = new List<int>();
        long needed = (long)blockLength * maxBlocks;
        foreach (string paragraph in paragraphs)
        {
            if (stream.Count >= needed) break;
            if (string.IsNullOrWhiteSpace(paragraph)) continue;
            stream.AddRange(tokenizer.Encode(paragraph, addSpecialTokens: false));
            stream.Add(eos);
        }
        blocks = (int)Math.Min(maxBlocks, stream.Count / blockLength);
        return stream.GetRange(0, blocks * blockLength).ToArray();
    }

    /// <summary>Exactly <paramref name="samples"/> blocks [samples, length] from a paragraph file, or a one-line error saying why not.</summary>
    public static int[] Read(string path, ITokenizer tokenizer, int samples, int length)
    {
        if (samples < 1) throw new QmoeException($"{path}: {samples} calibration samples requested, need at least 1");
        if (length < 2) throw new QmoeException($"{path}: blocks of {length} tokens requested, need at least 2");
        int[] blocks = Build(tokenizer, ReadParagraphs(path), length, samples, out int made);
        if (made == samples) return blocks;
        throw new QmoeException(made == 0
            ? $"{path}: text too short for one block of {length} tokens"
            : $"{path}: text makes only {made} blocks of {length} tokens, {samples} samples requested");
    }
}
