using System.IO.Hashing;
using System.Runtime.InteropServices;
using Qmoe.IO;

namespace Qmoe.Codec;

/// <summary>
/// The full integrity check of <c>verify</c>: every tensor's XxHash64 against the metadata, then every expert row
/// decodable (its codes cover exactly its width) and every scale finite. Throws a <see cref="QmoeException"/>
/// naming the first bad tensor, in file order.
/// </summary>
public static unsafe class CompressedModelVerifier
{
    /// <summary>Verifies an opened model; returns the number of tensors checked.</summary>
    public static int Verify(CompressedModel model)
    {
        int tensors = 0;
        foreach (var f in model.Store.Files)
            foreach (var name in f.Names)
            {
                CheckHash(f, f.Info(name));
                tensors++;
            }
        foreach (var g in model.Groups) CheckDecodable(model, g);
        return tensors;
    }

    /// <summary>
    /// Checksums of the expert groups' tensors only (codes, offsets, scales): what inference checks when it opens a
    /// model, so a flipped code byte is refused with the tensor named instead of decoding to wrong weights. They are
    /// a small part of a compressed model and XxHash64 runs at memory speed.
    /// </summary>
    public static void VerifyExpertTensors(CompressedModel model)
    {
        foreach (var g in model.Groups)
            foreach (var t in g.Tensors) CheckHash(model.Store.FileOf(t.Name), t);
    }

    private static void CheckHash(SafeTensorsFile f, TensorInfo t)
    {
        if (!f.Metadata.TryGetValue(SafeTensorsWriter.HashPrefix + t.Name, out var expected))
            throw new QmoeException($"{f.Path}: tensor '{t.Name}' has no {SafeTensorsWriter.HashPrefix} checksum");
        var hash = new XxHash64();
        byte* p = t.ByteLength > 0 ? f.Pointer(t) : null;
        for (long done = 0; done < t.ByteLength;)
        {
            int n = (int)Math.Min(1 << 24, t.ByteLength - done);
            hash.Append(new ReadOnlySpan<byte>(p + done, n));
            done += n;
        }
        string actual = hash.GetCurrentHashAsUInt64().ToString("x16");
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
            throw new QmoeException($"{f.Path}: tensor '{t.Name}' is corrupt (xxhash64 {actual}, recorded {expected})");
    }

    private static void CheckDecodable(CompressedModel model, ExpertGroup g)
    {
        g.NBit?.CheckScales(model.Store, model.Directory);
        for (int e = 0; e < g.Experts; e++)
        {
            if (g.NBit?.IsPacked(e) == true) continue; // bit-packed: every bit pattern is a valid code
            bool coded = g.NBit?.IsCoded(e) == true; // coded 2-bit: the four-level dictionary's codes, the grid's scales
            var entries = coded ? model.FourLevelDictionary!.Entries : model.Dictionary.Entries;
            var m = model.Expert(g, e);
            var part = g.PartOf(e);
            for (int r = 0; r < g.Rows; r++)
            {
                var codes = m.Codes[m.RowOffsets[r]..m.RowOffsets[r + 1]];
                long covered = 0;
                for (int k = 0; k < codes.Length; k++)
                {
                    if (covered >= g.Cols)
                        throw new QmoeException($"{part.File.Path}: tensor '{part.CodesTensor.Name}' expert {e} row {r}: code {k} of {codes.Length} starts past the row end ({g.Cols})");
                    covered += 2 * (entries[2 * codes[k]] & 15);
                }
                if (covered < g.Cols)
                    throw new QmoeException($"{part.File.Path}: tensor '{part.CodesTensor.Name}' expert {e} row {r}: codes cover {covered} of {g.Cols} weights");
            }
            if (coded) continue;
            foreach (var s in m.Scales)
                if (!float.IsFinite(BFloat16.ToFloat(s)))
                    throw new QmoeException($"{part.File.Path}: tensor '{part.ScalesTensor.Name}' expert {e} has a non-finite scale");
        }
    }
}
