using Qmoe.IO;

namespace Qmoe.Text;

/// <summary>Plain token blocks [Count, Length] for calibrating or evaluating a decoder-only model (no corruption).</summary>
public sealed class CausalBlocks
{
    public int Count { get; }
    public int Length { get; }
    /// <summary>Ids [Count, Length] row-major.</summary>
    public int[] Ids { get; }

    public CausalBlocks(int[] ids, int length)
    {
        if (length < 1 || ids.Length % length != 0) throw new ArgumentException($"{ids.Length} ids are not rows of {length}");
        Ids = ids; Length = length; Count = ids.Length / length;
    }

    /// <summary>The first <paramref name="samples"/> blocks of <paramref name="length"/> tokens of a text file (see <see cref="TokenBlocks"/>).</summary>
    public static CausalBlocks FromText(string path, ITokenizer tokenizer, int samples, int length = 141) =>
        new(TokenBlocks.Read(path, tokenizer, samples, length), length);

    /// <summary>The first <paramref name="samples"/> rows of tensor <c>split.raw_blocks</c> of a safetensors file.</summary>
    public static CausalBlocks FromTokenFile(string path, string split, int samples, int vocabSize)
    {
        using var file = SafeTensorsFile.Open(path);
        int[] ids = TokenTensor.Read(file, split, "raw_blocks", samples, vocabSize, out int length);
        return new CausalBlocks(ids, length);
    }
}
