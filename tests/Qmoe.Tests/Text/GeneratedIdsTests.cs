using Qmoe.Text;

namespace Qmoe.Tests.Text;

/// <summary>Generated ids past the tokenizer's vocabulary (a padded or synthetic head) have no text and are dropped.</summary>
public class GeneratedIdsTests
{
    private static readonly T5Tokenizer Switch = T5Tokenizer.Load(Paths.TinyModel, sentinelCount: 100);

    [Fact]
    public void IdsWithoutATokenAreDroppedWhereTheTokenizerRefusesThem()
    {
        var ids = Switch.Encode("The quick brown fox jumps over the lazy dog.", addSpecialTokens: false);
        int past = Switch.VocabSize; // e.g. a row of T5's 32,128-row head past its 32,100 tokens
        var padded = ids.Take(3).Append(past).Concat(ids.Skip(3)).Append(past + 27).ToArray();
        Assert.Throws<QmoeException>(() => Switch.Decode(padded));
        Assert.Equal(Switch.Decode(ids), Switch.DecodeGenerated(padded));
        Assert.Equal(Switch.Decode(ids), Switch.DecodeGenerated(ids));
    }

    [Fact]
    public void TheStreamerSkipsThemToo()
    {
        var ids = Switch.Encode("And God said, let there be light.", addSpecialTokens: false);
        var streamer = new TextStreamer(Switch);
        var text = string.Concat(ids.SelectMany(id => new[] { streamer.Push(id), streamer.Push(Switch.VocabSize + 5) })) + streamer.Flush();
        Assert.Equal(Switch.Decode(ids), text);
    }
}
