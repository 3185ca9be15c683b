using Qmoe.IO;
using Qmoe.Text;

namespace Qmoe.Tests.Text;

public class TokenBlocksTests
{
    private static readonly T5Tokenizer Switch = T5Tokenizer.Load(Paths.TinyModel, sentinelCount: 100);

    [Fact]
    public void Calibration_text_reproduces_the_first_training_blocks()
    {
        // tests/data holds raw blocks 0..15 of the fixtures' calibration_set.safetensors.
        using var f = SafeTensorsFile.Open(Path.Combine(Paths.TestData, "text", "calibration_raw_blocks_0-15.safetensors"));
        int[] expected = f.ReadInt32("calibration.raw_blocks");
        int[] blocks = TokenBlocks.Build(Switch, TokenBlocks.ReadParagraphs(Paths.CalibrationText), 141, 16, out int n);
        Assert.Equal(16, n);
        Assert.Equal(expected, blocks);
    }

    [FixtureFact("data", "calibration_set.safetensors")]
    public void Calibration_text_reproduces_every_training_block_it_covers()
    {
        using var f = SafeTensorsFile.Open(Paths.Fixture("data", "calibration_set.safetensors")!);
        int[] expected = f.ReadInt32("calibration.raw_blocks");
        int[] blocks = TokenBlocks.Build(Switch, TokenBlocks.ReadParagraphs(Paths.CalibrationText), 141, 1024, out int n);
        Assert.True(n > 800, $"only {n} blocks from calibration.txt");
        Assert.Equal(expected[..blocks.Length], blocks);
    }

    [FixtureTheory("corpus", "ood_man.txt.gz")]
    [InlineData("validation")]
    [InlineData("ood_man")]
    public void Eval_corpora_reproduce_the_eval_blocks(string split)
    {
        using var f = SafeTensorsFile.Open(Paths.EvalSets);
        int[] index = f.ReadInt32(split + ".block_index");
        int[] raw = f.ReadInt32(split + ".raw_blocks");
        const int maxBlock = 400; // ood_man is 6620 blocks; the first 16 sampled ones suffice and keep this fast
        int[] blocks = TokenBlocks.Build(Switch, TokenBlocks.ReadParagraphs(Paths.Fixture("corpus", split + ".txt.gz")!), 141, maxBlock, out _);
        int compared = 0;
        for (int i = 0; i < index.Length && index[i] < maxBlock; i++, compared++)
            Assert.Equal(raw.AsSpan(i * 141, 141).ToArray(), blocks.AsSpan(index[i] * 141, 141).ToArray());
        Assert.True(compared >= 15, $"{split}: compared only {compared} blocks");
    }

    [Fact]
    public void Blocks_concatenate_paragraphs_with_eos_and_drop_the_partial_tail()
    {
        string[] paragraphs = ["In the beginning", "", "God created", "the heaven and the earth."];
        var stream = paragraphs.Where(p => p != "").SelectMany(p => Switch.Encode(p)).ToArray();
        int[] blocks = TokenBlocks.Build(Switch, paragraphs, 4, 100, out int n);
        Assert.Equal(stream.Length / 4, n);
        Assert.Equal(stream[..(n * 4)], blocks);
        Assert.Equal(stream[..4], TokenBlocks.Build(Switch, paragraphs, 4, 1, out n));
        Assert.Equal(1, n);
    }

    [Fact]
    public void Paragraph_files_are_read_plain_or_gzipped()
    {
        using var dir = Paths.Temp();
        File.WriteAllText(dir.File("a.txt"), "one\n\n  \ntwo\n");
        using (var gz = new System.IO.Compression.GZipStream(File.Create(dir.File("a.txt.gz")), System.IO.Compression.CompressionLevel.Fastest))
            gz.Write("one\ntwo"u8);
        Assert.Equal(["one", "two"], TokenBlocks.ReadParagraphs(dir.File("a.txt")));
        Assert.Equal(["one", "two"], TokenBlocks.ReadParagraphs(dir.File("a.txt.gz")));
        File.WriteAllText(dir.File("bad.gz"), "not gzip");
        Assert.Throws<QmoeException>(() => TokenBlocks.ReadParagraphs(dir.File("bad.gz")).ToList());
        Assert.Throws<QmoeException>(() => TokenBlocks.ReadParagraphs(dir.File("missing.txt")));
    }
}
