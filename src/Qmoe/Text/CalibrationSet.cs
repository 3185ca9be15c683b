using Qmoe.IO;

namespace Qmoe.Text;

/// <summary>
/// Span-corruption calibration samples for an encoder-decoder model: encoder ids [Count, InputLength] and
/// labels [Count, LabelLength] (decoder inputs are the labels shifted right behind token 0).
/// </summary>
public sealed class CalibrationSet
{
    /// <summary>The default corruption seed (the one the fixtures' README names; their RNG is numpy's, not reproduced here).</summary>
    public const int DefaultSeed = 4000;

    public int Count { get; }
    public int InputLength { get; }
    public int LabelLength { get; }
    /// <summary>Encoder ids [Count, InputLength] row-major.</summary>
    public int[] InputIds { get; }
    /// <summary>Labels [Count, LabelLength] row-major.</summary>
    public int[] Labels { get; }

    public CalibrationSet(int[] inputIds, int inputLength, int[] labels, int labelLength)
    {
        if (inputLength < 1 || labelLength < 1 || inputIds.Length % inputLength != 0 || labels.Length % labelLength != 0
            || inputIds.Length / inputLength != labels.Length / labelLength)
            throw new ArgumentException($"inputs [{inputIds.Length} / {inputLength}] and labels [{labels.Length} / {labelLength}] disagree");
        InputIds = inputIds; InputLength = inputLength; Labels = labels; LabelLength = labelLength;
        Count = inputIds.Length / inputLength;
    }

    /// <summary>Decoder input ids [Count, LabelLength]: <c>[0] + labels[:-1]</c> per sample.</summary>
    public int[] DecoderInputIds() => SpanCorruption.DecoderInputs(Labels, LabelLength);

    /// <summary>
    /// <paramref name="samples"/> samples from a text file (one paragraph per line, optionally .gz): tokenised
    /// with eos after each paragraph, concatenated, cut into raw blocks of <paramref name="corruption"/>'s
    /// length (default T5's 141 → 128 encoder ids, 29 labels), each block span-corrupted with masks drawn
    /// in order from one generator seeded with <paramref name="seed"/>.
    /// </summary>
    public static CalibrationSet FromText(string path, T5Tokenizer tokenizer, int samples, int seed = DefaultSeed, SpanCorruption? corruption = null)
    {
        if (tokenizer.SentinelCount == 0) throw new QmoeException($"{path}: span corruption needs a tokenizer with sentinels");
        corruption ??= new SpanCorruption(141);
        if (corruption.NoiseSpans > tokenizer.SentinelCount)
            throw new QmoeException($"{path}: {corruption.NoiseSpans} noise spans per block but only {tokenizer.SentinelCount} sentinels");
        int[] raw = TokenBlocks.Read(path, tokenizer, samples, corruption.RawLength);

        var rng = new Random(seed);
        var inputs = new int[samples * corruption.InputLength];
        var labels = new int[samples * corruption.LabelLength];
        for (int s = 0; s < samples; s++)
            corruption.Apply(raw.AsSpan(s * corruption.RawLength, corruption.RawLength), corruption.NoiseMask(rng), tokenizer.SentinelId(0),
                inputs.AsSpan(s * corruption.InputLength, corruption.InputLength), labels.AsSpan(s * corruption.LabelLength, corruption.LabelLength));
        return new CalibrationSet(inputs, corruption.InputLength, labels, corruption.LabelLength);
    }

    /// <summary>The first <paramref name="samples"/> rows of tensors <c>split.input_ids</c> / <c>split.labels</c> of a safetensors file.</summary>
    public static CalibrationSet FromTokenFile(string path, string split, int samples, int vocabSize)
    {
        using var file = SafeTensorsFile.Open(path);
        int[] inputs = TokenTensor.Read(file, split, "input_ids", samples, vocabSize, out int inputLength);
        int[] labels = TokenTensor.Read(file, split, "labels", samples, vocabSize, out int labelLength);
        return new CalibrationSet(inputs, inputLength, labels, labelLength);
    }
}
