using BenchmarkDotNet.Attributes;
using Qmoe.Codec;

namespace Qmoe.Bench;

/// <summary>
/// dict16 encode and decode of one expert-shaped ternary matrix (i.i.d. trits, QMoE's 88.5% zeros). One trit is one
/// input byte, so MB/s = Rows·Cols / 10^6 / seconds per operation. The scalar reference decoder is the baseline.
/// </summary>
[MemoryDiagnoser]
public class CodecBenchmarks
{
    [Params(768)] public int Rows;
    [Params(3072)] public int Cols;
    [Params(0.885)] public double ZeroFraction;

    private byte[] _trits = [];
    private EncodedMatrix _encoded = null!;
    private byte[] _row = [];
    private readonly CodeDictionary _dict = CodeDictionary.Default;

    [GlobalSetup]
    public void Setup()
    {
        var rnd = new Random(1);
        _trits = new byte[Rows * Cols];
        for (int i = 0; i < _trits.Length; i++) _trits[i] = rnd.NextDouble() < ZeroFraction ? (byte)0 : (byte)(1 + rnd.Next(2));
        _encoded = TernaryEncoder.Encode(_trits, Rows, Cols, _dict);
        _row = new byte[Cols];
        _ = _dict.DecodeTable;
    }

    [Benchmark]
    public EncodedMatrix Encode() => TernaryEncoder.Encode(_trits, Rows, Cols, _dict);

    [Benchmark]
    public EncodedMatrix EncodeOneThread() => TernaryEncoder.Encode(_trits, Rows, Cols, _dict, threads: 1);

    [Benchmark(Baseline = true)]
    public void DecodeReferenceOneThread()
    {
        for (int r = 0; r < Rows; r++) TernaryDecoder.DecodeRowReference(_encoded.Row(r), _dict, _row);
    }

    [Benchmark]
    public void DecodeOneThread()
    {
        for (int r = 0; r < Rows; r++) TernaryDecoder.DecodeRow(_encoded.Row(r), _dict, _row);
    }

    [Benchmark]
    public byte[] Decode() => TernaryDecoder.Decode(_encoded, _dict);
}
