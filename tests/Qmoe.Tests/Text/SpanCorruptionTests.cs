using CsCheck;
using Qmoe.IO;
using Qmoe.Text;

namespace Qmoe.Tests.Text;

public class SpanCorruptionTests
{
    private static readonly SpanCorruption T5 = new(141);

    private static int Spans(ReadOnlySpan<bool> mask)
    {
        int spans = 0;
        for (int i = 0; i < mask.Length; i++) if (mask[i] && (i == 0 || !mask[i - 1])) spans++;
        return spans;
    }

    [Fact]
    public void Fixture_recipe_shapes()
    {
        Assert.Equal((21, 7, 128, 29), (T5.NoiseTokens, T5.NoiseSpans, T5.InputLength, T5.LabelLength));
    }

    [Theory]
    [InlineData("validation")]
    [InlineData("ood_man")]
    public void Applying_the_eval_sets_noise_masks_reproduces_their_inputs_and_labels(string split)
    {
        using var f = SafeTensorsFile.Open(Paths.EvalSets);
        int[] raw = f.ReadInt32(split + ".raw_blocks"), inputs = f.ReadInt32(split + ".input_ids"), labels = f.ReadInt32(split + ".labels");
        bool[] mask = f.ReadInt32(split + ".noise_mask").Select(m => m != 0).ToArray();
        int n = raw.Length / 141;
        var myInputs = new int[128];
        var myLabels = new int[29];
        for (int r = 0; r < n; r++)
        {
            var m = mask.AsSpan(r * 141, 141);
            // The fixtures' masks have T5's structure: 21 noise tokens in 7 spans, never starting with noise.
            Assert.Equal(21, m.Count(true));
            Assert.Equal(7, Spans(m));
            Assert.False(m[0]);
            T5.Apply(raw.AsSpan(r * 141, 141), m, firstSentinelId: 3999, myInputs, myLabels);
            Assert.Equal(inputs.AsSpan(r * 128, 128).ToArray(), myInputs);
            Assert.Equal(labels.AsSpan(r * 29, 29).ToArray(), myLabels);
        }
    }

    [FixtureFact("data", "calibration_set.safetensors")]
    public void Calibration_set_inputs_and_labels_reconstruct_the_raw_blocks()
    {
        using var f = SafeTensorsFile.Open(Paths.Fixture("data", "calibration_set.safetensors")!);
        int[] raw = f.ReadInt32("calibration.raw_blocks"), inputs = f.ReadInt32("calibration.input_ids"), labels = f.ReadInt32("calibration.labels");
        for (int r = 0; r < raw.Length / 141; r++)
            Assert.Equal(raw.AsSpan(r * 141, 141).ToArray(), Reconstruct(inputs.AsSpan(r * 128, 128), labels.AsSpan(r * 29, 29)));
    }

    /// <summary>Inverse of span corruption: put each sentinel's label tokens back in place of the sentinel.</summary>
    internal static int[] Reconstruct(ReadOnlySpan<int> inputs, ReadOnlySpan<int> labels)
    {
        var spans = new Dictionary<int, List<int>>();
        List<int>? current = null;
        foreach (int id in labels[..^1])
            if (id >= 3900) spans[id] = current = []; else current!.Add(id);
        Assert.Equal(T5Tokenizer.EosId, labels[^1]);
        Assert.Equal(T5Tokenizer.EosId, inputs[^1]);
        var raw = new List<int>();
        int expectedSentinel = 3999;
        foreach (int id in inputs[..^1])
        {
            if (id < 3900) { raw.Add(id); continue; }
            Assert.Equal(expectedSentinel--, id); // sentinels in order <extra_id_0>, <extra_id_1>, ...
            raw.AddRange(spans[id]);
        }
        Assert.Equal(spans.Count, 3999 - expectedSentinel);
        return raw.ToArray();
    }

    [Fact]
    public void Random_masks_have_the_recipe_structure_and_apply_invertibly()
    {
        Gen.Select(Gen.Int, Gen.Int[2, 300], Gen.Double[0.05, 0.5], Gen.Double[1, 5]).Sample((seed, length, density, mean) =>
        {
            SpanCorruption c;
            try { c = new SpanCorruption(length, density, mean); }
            catch (QmoeException) { return; } // more spans than gaps for them: refused, checked below
            var rng = new Random(seed);
            bool[] mask = c.NoiseMask(rng);
            Assert.Equal(c.NoiseTokens, mask.Count(m => m));
            Assert.Equal(c.NoiseSpans, Spans(mask));
            Assert.False(mask[0]);
            int[] raw = Enumerable.Range(0, length).Select(i => 3 + i % 3000).ToArray();
            var inputs = new int[c.InputLength];
            var labels = new int[c.LabelLength];
            c.Apply(raw, mask, 3999, inputs, labels);
            var spans = new List<int>();
            foreach (int id in labels[..^1]) if (id > 3500) spans.Add(id);
            Assert.Equal(Enumerable.Range(0, c.NoiseSpans).Select(k => 3999 - k), spans);
        }, iter: 200);
        Assert.Throws<QmoeException>(() => new SpanCorruption(4, 0.75, 1));
        Assert.Throws<QmoeException>(() => new SpanCorruption(1));
    }

    [Fact]
    public void Masks_are_seeded_and_vary_between_blocks()
    {
        var a = new Random(7);
        var b = new Random(7);
        bool[] first = T5.NoiseMask(a);
        Assert.Equal(first, T5.NoiseMask(b));
        Assert.NotEqual(first, T5.NoiseMask(a));
    }

    [Fact]
    public void Decoder_inputs_shift_labels_right_behind_the_start_token()
    {
        Assert.Equal([0, 3999, 5, 0, 3998, 7], SpanCorruption.DecoderInputs([3999, 5, 1, 3998, 7, 1], 3));
    }

    [Fact]
    public void A_mask_that_does_not_fit_the_recipe_is_refused()
    {
        var raw = new int[141];
        Assert.Throws<ArgumentException>(() => T5.Apply(raw, new bool[141], 3999, new int[128], new int[29]));
    }
}
