namespace Qmoe.Compression;

/// <summary>
/// Calibration samples: for an encoder-decoder, encoder ids and teacher-forced decoder input ids per sample,
/// and optionally which positions may enter the Hessians (pre-masking; the forward pass always uses all);
/// for a decoder-only model, plain token blocks as <see cref="DecoderInput"/> and no encoder input.
/// </summary>
public sealed record CalibrationData(int[][] EncoderInput, int[][] DecoderInput, string Source)
{
    /// <summary>encoder position → include in Hessians (null: all).</summary>
    public bool[][]? EncoderHessianMask { get; init; }
    /// <summary>decoder position → include in Hessians (null: all).</summary>
    public bool[][]? DecoderHessianMask { get; init; }

    public int Samples => DecoderInput.Length;

    /// <summary>Plain causal blocks for a decoder-only model.</summary>
    public static CalibrationData Causal(int[][] blocks, string source) => new([], blocks, source);

    /// <summary>A 64-bit fingerprint of the token ids and masks (part of the resume checkpoint's identity).</summary>
    public ulong Fingerprint()
    {
        var h = new System.IO.Hashing.XxHash64();
        void Add(int[][] rows) { foreach (var r in rows) { h.Append(BitConverter.GetBytes(r.Length)); h.Append(System.Runtime.InteropServices.MemoryMarshal.AsBytes(r.AsSpan())); } }
        void AddMask(bool[][]? m) { if (m == null) { h.Append([0]); return; } foreach (var r in m) h.Append(r.Select(b => (byte)(b ? 1 : 0)).ToArray()); }
        Add(EncoderInput); Add(DecoderInput); AddMask(EncoderHessianMask); AddMask(DecoderHessianMask);
        return h.GetCurrentHashAsUInt64();
    }
}
