using System.Text;
using System.Text.RegularExpressions;
using Qmoe.Codec;

namespace Qmoe.Tests.Codec;

/// <summary>
/// Fuzzing of the compressed model reader (SPEC §8): mutated model.safetensors and config.json files (bit flips,
/// byte runs, truncations, absurd header lengths, offsets, shapes and metadata) must be refused with a
/// <see cref="QmoeException"/> or read correctly — never another exception, a hang, or a large allocation.
/// CI runs a sample (100 per layout); the full run (10^4 files per layout) is
/// <c>QMOE_FUZZ_ITERATIONS=10000 dotnet test -c Release --filter FullyQualifiedName~CompressedModelFuzzTests</c>.
/// </summary>
public partial class CompressedModelFuzzTests
{
    private static int Iterations =>
        int.TryParse(Environment.GetEnvironmentVariable("QMOE_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : 100;

    /// <summary>No single open/verify/decode of these small files may allocate more than this.</summary>
    private const long AllocationLimit = 64L << 20;

    [GeneratedRegex(@"\d+")]
    private static partial Regex Number();

    [Theory]
    [InlineData(CompressedFormat.Version1, false, DictionaryStorage.Auto)]
    [InlineData(CompressedFormat.Version2, false, DictionaryStorage.Parameters)]
    [InlineData(CompressedFormat.Version2, true, DictionaryStorage.Trie)]
    public void MutatedFilesAreRefusedCleanly(int version, bool rowCounts, DictionaryStorage storage)
    {
        using var tmp = Paths.Temp();
        string good = Path.Combine(tmp.Path, "good"), bad = Path.Combine(tmp.Path, "bad");
        SmallModel.Write(good, version: version, rowCounts: rowCounts, storage: storage);
        Directory.CreateDirectory(bad);
        byte[] weights = File.ReadAllBytes(Path.Combine(good, "model.safetensors"));
        byte[] config = File.ReadAllBytes(Path.Combine(good, "config.json"));
        int headerEnd = 8 + (int)BitConverter.ToInt64(weights, 0);
        var rnd = new Random(1000 + version + (rowCounts ? 10 : 0));
        int refused = 0;
        for (int i = 0; i < Iterations; i++)
        {
            bool mutateConfig = rnd.Next(8) == 0;
            var w = mutateConfig ? weights : Mutate(weights, headerEnd, rnd);
            var c = mutateConfig ? Mutate(config, config.Length, rnd) : config;
            File.WriteAllBytes(Path.Combine(bad, "model.safetensors"), w);
            File.WriteAllBytes(Path.Combine(bad, "config.json"), c);
            if (!ReadEverything(bad, i)) refused++;
        }
        Assert.True(refused > Iterations / 2, $"only {refused} of {Iterations} mutations were detected");
    }

    /// <summary>Opens, computes statistics, decodes every expert and verifies; false when refused.</summary>
    private static bool ReadEverything(string dir, int iteration)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            using var model = CompressedModel.Open(dir);
            ModelStatistics.Compute(model);
            foreach (var g in model.Groups)
                for (int e = 0; e < g.Experts; e++)
                {
                    var m = model.Expert(g, e);
                    var row = new byte[m.Cols];
                    for (int r = 0; r < m.Rows; r++)
                        TernaryDecoder.DecodeRowReference(m.Codes[m.RowOffsets[r]..m.RowOffsets[r + 1]], model.Dictionary, row);
                }
            CompressedModelVerifier.Verify(model);
            return true;
        }
        catch (QmoeException e)
        {
            Assert.DoesNotContain('\n', e.Message);
            return false;
        }
        catch (Exception e)
        {
            Assert.Fail($"iteration {iteration}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            return false;
        }
        finally
        {
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < AllocationLimit, $"iteration {iteration} allocated {allocated} bytes");
        }
    }

    private static byte[] Mutate(byte[] original, int headerEnd, Random rnd)
    {
        var b = (byte[])original.Clone();
        switch (rnd.Next(7))
        {
            case 0: // bit flips, mostly in the header
                for (int k = rnd.Next(1, 4); k > 0; k--)
                {
                    int pos = rnd.Next(2) == 0 ? rnd.Next(headerEnd) : rnd.Next(b.Length);
                    b[pos] ^= (byte)(1 << rnd.Next(8));
                }
                return b;
            case 1: // a run of random bytes in the data
                {
                    int pos = rnd.Next(b.Length), n = Math.Min(b.Length - pos, rnd.Next(1, 64));
                    rnd.NextBytes(b.AsSpan(pos, n));
                    return b;
                }
            case 2: // truncation
                return b[..rnd.Next(b.Length)];
            case 3: // absurd header length
                if (headerEnd == original.Length) goto default; // config.json: no header length
                BitConverter.GetBytes(rnd.Next(3) switch { 0 => long.MaxValue, 1 => -rnd.NextInt64(1, long.MaxValue), _ => rnd.NextInt64(1L << 40) }).CopyTo(b, 0);
                return b;
            case 4: // a number in the header (offset, shape, metadata, version) replaced
                {
                    int start = headerEnd == original.Length ? 0 : 8;
                    string text = Encoding.UTF8.GetString(b, start, headerEnd - start);
                    var numbers = Number().Matches(text);
                    if (numbers.Count == 0) goto default;
                    var m = numbers[rnd.Next(numbers.Count)];
                    string replacement = rnd.Next(4) switch
                    {
                        0 => "0",
                        1 => "9223372036854775807",
                        2 => (long.Parse(m.Value.Length > 18 ? "1" : m.Value) + rnd.Next(-3, 4)).ToString(),
                        _ => rnd.NextInt64(1L << 42).ToString(),
                    };
                    return Splice(b, start + Encoding.UTF8.GetByteCount(text[..m.Index]), Encoding.UTF8.GetByteCount(m.Value), replacement, start, headerEnd);
                }
            case 5: // a string in the header (dtype, name, hash) damaged
                {
                    int start = headerEnd == original.Length ? 0 : 8;
                    int pos = start + rnd.Next(headerEnd - start);
                    b[pos] = (byte)"\"{}[],:0A-x"[rnd.Next(11)];
                    return b;
                }
            default:
                b[rnd.Next(b.Length)] ^= 0xFF;
                return b;
        }
    }

    /// <summary>Replaces bytes [pos, pos + len) with <paramref name="text"/>, fixing the safetensors header length.</summary>
    private static byte[] Splice(byte[] b, int pos, int len, string text, int start, int headerEnd)
    {
        var insert = Encoding.UTF8.GetBytes(text);
        var result = new byte[b.Length - len + insert.Length];
        b.AsSpan(0, pos).CopyTo(result);
        insert.CopyTo(result, pos);
        b.AsSpan(pos + len).CopyTo(result.AsSpan(pos + insert.Length));
        if (start == 8) BitConverter.GetBytes((long)(headerEnd - 8 - len + insert.Length)).CopyTo(result, 0);
        return result;
    }
}
