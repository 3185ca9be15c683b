using System.Runtime.InteropServices;
using Qmoe.IO;
using Qmoe.Models.Layers;

namespace Qmoe.Tests.IO;

/// <summary>FP8 e4m3 decoding and 128×128-style block dequantization (here 2×2 blocks) against hand-computed values.</summary>
public class Fp8Tests
{
    [Theory]
    [InlineData(0x00, 0.0)]
    [InlineData(0x38, 1.0)]          // exp 7 (bias 7), mantissa 0
    [InlineData(0x3C, 1.5)]          // mantissa 4/8
    [InlineData(0x40, 2.0)]
    [InlineData(0xC0, -2.0)]
    [InlineData(0x01, 0.001953125)]  // subnormal: 1/8 · 2⁻⁶ = 2⁻⁹
    [InlineData(0x07, 0.013671875)]  // largest subnormal: 7/8 · 2⁻⁶
    [InlineData(0x08, 0.015625)]     // smallest normal 2⁻⁶
    [InlineData(0x7E, 448.0)]        // largest finite: 1.75 · 2⁸
    [InlineData(0xFE, -448.0)]
    [InlineData(0x52, 10.0)]         // exp 10, mantissa 2: 1.25 · 2³
    public void DecodesE4M3(int bits, double expected) => Assert.Equal((float)expected, Fp8E4M3.ToFloat((byte)bits));

    [Fact]
    public void NanHasNoInfinity()
    {
        Assert.True(float.IsNaN(Fp8E4M3.ToFloat(0x7F)));
        Assert.True(float.IsNaN(Fp8E4M3.ToFloat(0xFF)));
        for (int b = 0; b < 256; b++) Assert.False(float.IsInfinity(Fp8E4M3.ToFloat((byte)b)));
    }

    // W [3, 5] in 2×2 blocks: scale_inv [2, 3].
    private static readonly byte[] W =
    [
        0x38, 0x40, 0x3C, 0xC0, 0x01,
        0x40, 0x38, 0x52, 0x00, 0x7E,
        0xC0, 0x3C, 0x38, 0x40, 0x08,
    ];
    private static readonly float[] Scales = [0.5f, 2f, 0.25f, 3f, -1f, 0.125f];
    private static readonly float[] Expected =
    [
        0.5f, 1f, 3f, -4f, 0.00048828125f,      // row 0: block row 0 scales 0.5 | 2 | 0.25
        1f, 0.5f, 20f, 0f, 112f,
        -6f, 4.5f, -1f, -2f, 0.001953125f,      // row 2: block row 1 scales 3 | -1 | 0.125
    ];

    [Fact]
    public void DequantizesBlocks()
    {
        var dst = new float[15];
        Fp8E4M3.DequantizeBlocks(W, 3, 5, Scales, 2, 2, dst);
        Assert.Equal(Expected, dst);
    }

    private static void WriteCheckpoint(string path, bool withScales)
    {
        var tensors = new List<(string, DType, long[], byte[])> { ("w.weight", DType.F8_E4M3, [3, 5], W) };
        if (withScales) tensors.Add(("w.weight_scale_inv", DType.F32, [2, 3], MemoryMarshal.AsBytes(Scales.AsSpan()).ToArray()));
        SafeTensorsWriter.WriteAll(path, tensors);
    }

    [Fact]
    public void StoreDequantizesOnLoadAndWhenStreaming()
    {
        using var dir = Paths.Temp();
        WriteCheckpoint(dir.File("model.safetensors"), withScales: true);
        using var store = TensorStore.Open(dir.Path);
        store.Fp8Block = (2, 2);
        var view = Matrix.View(store, "w.weight", 3, 5); // dequantized on first use, again after the cache is dropped
        Assert.Equal(Expected, view.ToFloat32());
        store.DropResident();
        Assert.Equal(Expected, view.F32.ToArray());
        var streamed = new float[15];
        store.ReadWeight("w.weight", 3, 5, streamed, unmapped: true);
        Assert.Equal(Expected, streamed);
    }

    [Fact]
    public void Fp8WithoutQuantizationConfigOrScalesIsRefused()
    {
        using var dir = Paths.Temp();
        WriteCheckpoint(dir.File("model.safetensors"), withScales: false);
        using var store = TensorStore.Open(dir.Path);
        var e = Assert.Throws<QmoeException>(() => Matrix.View(store, "w.weight", 3, 5));
        Assert.Contains("quantization_config", e.Message);
        store.Fp8Block = (2, 2);
        e = Assert.Throws<QmoeException>(() => Matrix.View(store, "w.weight", 3, 5));
        Assert.Contains("weight_scale_inv", e.Message);
    }
}
