namespace Qmoe.Text;

/// <summary>
/// T5's span-corruption objective (<c>random_spans_noise_mask</c>): of a raw block of <see cref="RawLength"/>
/// tokens, round(RawLength × density) tokens in round(noise / meanSpanLength) spans are noise. The encoder
/// sees the non-noise tokens with one sentinel per noise span, then eos; the labels are each span's sentinel
/// followed by its tokens, then eos. Sentinels count down from <c>&lt;extra_id_0&gt;</c>.
/// For the fixtures' blocks (141 tokens, density 0.15, mean span 3): 21 noise tokens in 7 spans,
/// 128 encoder ids, 29 labels.
/// </summary>
public sealed class SpanCorruption
{
    public int RawLength { get; }
    public int NoiseTokens { get; }
    public int NoiseSpans { get; }
    /// <summary>Encoder ids per block: non-noise tokens + one sentinel per span + eos.</summary>
    public int InputLength => RawLength - NoiseTokens + NoiseSpans + 1;
    /// <summary>Labels per block: one sentinel per span + noise tokens + eos.</summary>
    public int LabelLength => NoiseSpans + NoiseTokens + 1;

    public SpanCorruption(int rawLength, double noiseDensity = 0.15, double meanNoiseSpanLength = 3)
    {
        if (rawLength < 2) throw new QmoeException($"span corruption needs blocks of at least 2 tokens, got {rawLength}");
        if (!(noiseDensity > 0 && noiseDensity < 1) || !(meanNoiseSpanLength >= 1))
            throw new QmoeException($"span corruption: noise density {noiseDensity} must be in (0, 1) and mean span {meanNoiseSpanLength} ≥ 1");
        RawLength = rawLength;
        // As T5 (numpy rounds half to even, as Math.Round does).
        NoiseTokens = Math.Clamp((int)Math.Round(rawLength * noiseDensity), 1, rawLength - 1);
        NoiseSpans = Math.Max((int)Math.Round(NoiseTokens / meanNoiseSpanLength), 1);
        if (NoiseSpans > rawLength - NoiseTokens)
            throw new QmoeException($"span corruption: {NoiseSpans} noise spans do not fit between {rawLength - NoiseTokens} non-noise tokens");
    }

    /// <summary>
    /// A random noise mask [RawLength]: non-noise and noise spans alternate, starting with non-noise; both
    /// kinds are split into <see cref="NoiseSpans"/> non-empty segments uniformly at random.
    /// </summary>
    public bool[] NoiseMask(Random rng)
    {
        int[] noise = RandomSegmentation(NoiseTokens, NoiseSpans, rng);
        int[] nonNoise = RandomSegmentation(RawLength - NoiseTokens, NoiseSpans, rng);
        var mask = new bool[RawLength];
        int pos = 0;
        for (int s = 0; s < NoiseSpans; s++)
        {
            pos += nonNoise[s];
            mask.AsSpan(pos, noise[s]).Fill(true);
            pos += noise[s];
        }
        return mask;
    }

    /// <summary>Lengths of <paramref name="segments"/> non-empty segments of <paramref name="items"/> items, uniformly at random.</summary>
    private static int[] RandomSegmentation(int items, int segments, Random rng)
    {
        // A segment starts after each of (segments − 1) randomly chosen gaps between the items.
        var startsAfter = new bool[items - 1];
        startsAfter.AsSpan(0, segments - 1).Fill(true);
        rng.Shuffle(startsAfter);
        var lengths = new int[segments];
        int segment = 0;
        for (int i = 0; i < items; i++)
        {
            lengths[segment]++;
            if (i < items - 1 && startsAfter[i]) segment++;
        }
        return lengths;
    }

    /// <summary>
    /// Writes a block's encoder ids [InputLength] and labels [LabelLength] under <paramref name="noiseMask"/>.
    /// <paramref name="firstSentinelId"/> is the id of <c>&lt;extra_id_0&gt;</c> (vocab_size − 1 for T5).
    /// </summary>
    public void Apply(ReadOnlySpan<int> raw, ReadOnlySpan<bool> noiseMask, int firstSentinelId, Span<int> inputIds, Span<int> labels)
    {
        if (raw.Length != RawLength || noiseMask.Length != RawLength || inputIds.Length != InputLength || labels.Length != LabelLength)
            throw new ArgumentException($"span corruption of a {RawLength}-token block: got raw {raw.Length}, mask {noiseMask.Length}, inputs {inputIds.Length}, labels {labels.Length}");
        int nIn = 0, nLabel = 0, span = 0;
        for (int i = 0; i < RawLength; i++)
        {
            if (!noiseMask[i]) { Write(inputIds, ref nIn, raw[i]); continue; }
            if (i == 0 || !noiseMask[i - 1])
            {
                int sentinel = firstSentinelId - span++;
                Write(inputIds, ref nIn, sentinel);
                Write(labels, ref nLabel, sentinel);
            }
            Write(labels, ref nLabel, raw[i]);
        }
        Write(inputIds, ref nIn, T5Tokenizer.EosId);
        Write(labels, ref nLabel, T5Tokenizer.EosId);
        if (nIn != InputLength || nLabel != LabelLength)
            throw new ArgumentException($"noise mask has {span} spans, expected {NoiseSpans} spans of {NoiseTokens} tokens in all");

        static void Write(Span<int> dst, ref int n, int id)
        {
            if (n >= dst.Length) throw new ArgumentException("noise mask does not match this span corruption's token and span counts");
            dst[n++] = id;
        }
    }

    /// <summary>Decoder inputs for <paramref name="labels"/> [rows, L]: each row shifted right behind the start token 0.</summary>
    public static int[] DecoderInputs(ReadOnlySpan<int> labels, int labelLength)
    {
        var dec = new int[labels.Length];
        for (int r = 0; r < labels.Length / labelLength; r++)
        {
            dec[r * labelLength] = T5Tokenizer.PadId; // decoder_start_token_id
            labels.Slice(r * labelLength, labelLength - 1).CopyTo(dec.AsSpan(r * labelLength + 1));
        }
        return dec;
    }
}
