namespace Qmoe.Models;

/// <summary>
/// A config's <c>quantization_config</c>. Only block-scaled FP8 is read (DeepSeek-V3 / Kimi-K2 / Qwen3 "-FP8"
/// checkpoints: quant_method fp8, fmt e4m3, weight_block_size [128, 128], weights F8_E4M3 with
/// <c>weight_scale_inv</c>); a qmoe-compressed model's <c>base_quantization_config</c> (its input's) is read the
/// same way; any other method is refused by name.
/// </summary>
public static class QuantizationConfig
{
    /// <summary>The FP8 block size [rows, cols], or null for an unquantized checkpoint.</summary>
    public static (int Rows, int Cols)? Fp8Block(ConfigReader c) => Fp8Block(c, "quantization_config");

    private static (int Rows, int Cols)? Fp8Block(ConfigReader c, string field)
    {
        var q = c.Object(field);
        if (q == null) return null;
        string method = q.String("quant_method");
        // A qmoe-compressed model: its experts are codes; the other tensors are as the input's own quantization_config says.
        if (method == Codec.CompressedFormat.QuantMethod) return Fp8Block(q, "base_quantization_config");
        if (method != "fp8") throw new QmoeException($"{q.Path}: quant_method '{method}' is not supported (only fp8)");
        string fmt = q.String("fmt", "e4m3");
        if (fmt != "e4m3") throw new QmoeException($"{q.Path}: fmt '{fmt}' is not supported (only e4m3)");
        var block = q.IntOrList("weight_block_size");
        if (block.Length != 2 || block[0] <= 0 || block[1] <= 0)
            throw new QmoeException($"{q.Path}: weight_block_size must be two positive integers (per-tensor FP8 scales are not supported)");
        return (block[0], block[1]);
    }
}
