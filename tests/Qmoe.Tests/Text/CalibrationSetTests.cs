using System.Runtime.InteropServices;
using Qmoe.IO;
using Qmoe.Text;

namespace Qmoe.Tests.Text;

public class CalibrationSetTests
{
    private static readonly T5Tokenizer Switch = T5Tokenizer.Load(Paths.TinyModel, sentinelCount: 100);

    private static int[] FirstRawBlocks()
    {
        using var f = SafeTensorsFile.Open(Path.Combine(Paths.TestData, "text", "calibration_raw_blocks_0-15.safetensors"));
        return f.ReadInt32("calibration.raw_blocks");
    }

    [Fact]
    public void From_text_corrupts_the_training_blocks()
    {
        var set = CalibrationSet.FromText(Paths.CalibrationText, Switch, samples: 16);
        Assert.Equal((16, 128, 29), (set.Count, set.InputLength, set.LabelLength));
        Assert.Equal(16 * 128, set.InputIds.Length);
        int[] raw = FirstRawBlocks();
        for (int s = 0; s < 16; s++)
            Assert.Equal(raw.AsSpan(s * 141, 141).ToArray(),
                SpanCorruptionTests.Reconstruct(set.InputIds.AsSpan(s * 128, 128), set.Labels.AsSpan(s * 29, 29)));
        int[] dec = set.DecoderInputIds();
        Assert.Equal(0, dec[29]);
        Assert.Equal(set.Labels.AsSpan(29, 28).ToArray(), dec.AsSpan(30, 28).ToArray());
    }

    [Fact]
    public void From_text_is_deterministic_per_seed()
    {
        var a = CalibrationSet.FromText(Paths.CalibrationText, Switch, 4);
        var b = CalibrationSet.FromText(Paths.CalibrationText, Switch, 4);
        var c = CalibrationSet.FromText(Paths.CalibrationText, Switch, 4, seed: 1);
        Assert.Equal(a.InputIds, b.InputIds);
        Assert.Equal(a.Labels, b.Labels);
        Assert.NotEqual(a.InputIds, c.InputIds);
    }

    [Fact]
    public void Bad_text_is_refused_in_one_line()
    {
        using var dir = Paths.Temp();
        File.WriteAllText(dir.File("empty.txt"), "\n  \n");
        File.WriteAllText(dir.File("short.txt"), "In the beginning God created the heaven and the earth.\n");
        File.WriteAllLines(dir.File("two.txt"), File.ReadLines(Paths.CalibrationText).Take(5));
        foreach (var (file, samples, expect) in new[] { ("empty.txt", 1, "too short"), ("short.txt", 1, "too short"), ("two.txt", 50, "only"), ("missing.txt", 1, "not found"), ("two.txt", 0, "at least 1") })
        {
            var e = Assert.Throws<QmoeException>(() => CalibrationSet.FromText(dir.File(file), Switch, samples));
            Assert.Contains(file, e.Message);
            Assert.Contains(expect, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        Assert.Throws<QmoeException>(() => CalibrationSet.FromText(Paths.CalibrationText, T5Tokenizer.Load(Paths.TinyModel, 0), 1));
    }

    [Fact]
    public void From_token_file_takes_the_first_rows_of_a_split()
    {
        var set = CalibrationSet.FromTokenFile(Paths.EvalSets, "validation", 10, vocabSize: 4000);
        using var f = SafeTensorsFile.Open(Paths.EvalSets);
        Assert.Equal((10, 128, 29), (set.Count, set.InputLength, set.LabelLength));
        Assert.Equal(f.ReadInt32("validation.input_ids")[..(10 * 128)], set.InputIds);
        Assert.Equal(f.ReadInt32("validation.labels")[..(10 * 29)], set.Labels);
    }

    [Fact]
    public void Bad_token_files_are_refused_in_one_line()
    {
        using var dir = Paths.Temp();
        static byte[] Bytes<T>(T[] a) where T : unmanaged => MemoryMarshal.AsBytes(a.AsSpan()).ToArray();
        SafeTensorsWriter.WriteAll(dir.File("bad.safetensors"), [
            ("f32.input_ids", DType.F32, [2, 3], Bytes(new float[6])),
            ("f32.labels", DType.F32, [2, 3], Bytes(new float[6])),
            ("flat.input_ids", DType.I32, [6], Bytes(new int[6])),
            ("flat.labels", DType.I32, [6], Bytes(new int[6])),
            ("big.input_ids", DType.I64, [2, 3], Bytes(new long[] { 1, 2, 3, 4, 5, 4000 })),
            ("big.labels", DType.I64, [2, 3], Bytes(new long[6])),
        ]);
        string bad = dir.File("bad.safetensors");
        foreach (var (file, split, samples, expect) in new[]
        {
            (Paths.EvalSets, "train", 1, "splits here: ood_man, validation"),
            (Paths.EvalSets, "validation", 300, "256 samples, 300 requested"),
            (bad, "f32", 1, "dtype F32"),
            (bad, "flat", 1, "shape [6]"),
            (bad, "big", 2, "id 4000"),
            (dir.File("missing.safetensors"), "x", 1, "not found"),
        })
        {
            var e = Assert.Throws<QmoeException>(() => CalibrationSet.FromTokenFile(file, split, samples, 4000));
            Assert.Contains(Path.GetFileName(file), e.Message);
            Assert.Contains(expect, e.Message);
            Assert.DoesNotContain('\n', e.Message);
        }
        // Row 0 of "big" is in range: asking for one sample reads only it.
        Assert.Equal(new[] { 1, 2, 3 }, CalibrationSet.FromTokenFile(bad, "big", 1, 4000).InputIds);
    }

    [Fact]
    public void Causal_blocks_come_from_text_or_raw_blocks()
    {
        var tok = T5Tokenizer.Load(Paths.TinyModel, 0);
        var fromText = CausalBlocks.FromText(Paths.CalibrationText, tok, 16);
        Assert.Equal((16, 141), (fromText.Count, fromText.Length));
        Assert.Equal(FirstRawBlocks(), fromText.Ids);
        Assert.Equal(64, CausalBlocks.FromText(Paths.CalibrationText, tok, 2, length: 64).Length);

        var fromFile = CausalBlocks.FromTokenFile(Paths.EvalSets, "ood_man", 3, vocabSize: 3900);
        using var f = SafeTensorsFile.Open(Paths.EvalSets);
        Assert.Equal(f.ReadInt32("ood_man.raw_blocks")[..(3 * 141)], fromFile.Ids);
        Assert.Throws<QmoeException>(() => CausalBlocks.FromTokenFile(Paths.EvalSets, "nope", 1, 3900));
        Assert.Throws<QmoeException>(() => CausalBlocks.FromText(Paths.CalibrationText, tok, 1, length: 1));
    }

    [Fact]
    public void Premask_drops_sentinel_positions()
    {
        var set = CalibrationSet.FromTokenFile(Paths.EvalSets, "validation", 8, 4000);
        bool[] enc = PreMask.Encoder(set.InputIds, Switch.PieceCount);
        bool[] dec = PreMask.Decoder(set.Labels, Switch.PieceCount);
        int[] decoderInputs = set.DecoderInputIds();
        for (int s = 0; s < set.Count; s++)
        {
            // 7 noise spans per sample: 7 sentinels in the encoder input and 7 in the labels.
            Assert.Equal(128 - 7, enc.AsSpan(s * 128, 128).Count(true));
            Assert.Equal(29 - 7, dec.AsSpan(s * 29, 29).Count(true));
            for (int t = 0; t < 128; t++) Assert.Equal(!Switch.IsSentinel(set.InputIds[s * 128 + t]), enc[s * 128 + t]);
            for (int t = 0; t + 1 < 29; t++) Assert.Equal(!Switch.IsSentinel(decoderInputs[s * 29 + t + 1]), dec[s * 29 + t]);
            Assert.True(dec[s * 29 + 28]); // the last position predicts eos
        }
    }
}
