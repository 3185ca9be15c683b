using System.Text.Json;
using Qmoe.Codec;
using Qmoe.IO;
using Qmoe.Models.Moe;
using Qmoe.Quantization;

namespace Qmoe.Compression;

/// <summary>
/// The quantized experts of one sparse layer, written to the run's work directory when the layer is done:
/// the unit of resumption (a layer whose file exists is never recomputed) and the input of the final
/// assembly. Ternary runs store packed trits (2 bits each) and bf16 (min, max) row scales, exactly what the
/// codec encodes; n-bit runs the bit-packed codes and f32 scale / u8 zero per row (<see cref="PackedNBitMatrix"/>); fake-quant runs store the dequantized matrices (in the checkpoint's dtype when that is
/// exact — ternary levels are bf16 — else f32). Tensors are expert-major: "{e}.{kind}.trits|scales|weight".
/// Statistics, fallbacks and caps go into a JSON sidecar.
/// </summary>
public sealed class LayerResultFile : IDisposable
{
    private readonly SafeTensorsWriter _writer;
    private readonly IExpertLayout _layout;
    private readonly bool _dense;
    private readonly DType _denseType;
    private readonly Func<int, string, QuantType> _typeOf;
    private int _next;

    /// <summary>Declares every tensor of the layer; experts are then written in order with <see cref="WriteExpert"/>.</summary>
    /// <param name="path">the file to write</param>
    /// <param name="layout">the family's expert matrices (kinds and shapes)</param>
    /// <param name="experts">experts in the layer</param>
    /// <param name="dense">store dequantized dense matrices (fake-quant) instead of trits or packed codes</param>
    /// <param name="denseType">the dense matrices' dtype</param>
    /// <param name="type">the experts' type; n-bit ones (not dense) are stored bit-packed: "{e}.{kind}.packed|row_scales|row_zeros"</param>
    public LayerResultFile(string path, IExpertLayout layout, int experts, bool dense, DType denseType, QuantType type = QuantType.Ternary)
        : this(path, layout, experts, dense, denseType, (_, _) => type) { }

    /// <summary>Mixed precision: <paramref name="typeOf"/> (expert, kind) gives each matrix's type.</summary>
    public LayerResultFile(string path, IExpertLayout layout, int experts, bool dense, DType denseType, Func<int, string, QuantType> typeOf)
    {
        _layout = layout; _dense = dense; _denseType = denseType; _typeOf = typeOf;
        _writer = new SafeTensorsWriter(path);
        for (int e = 0; e < experts; e++)
            foreach (var kind in layout.Kinds)
            {
                var (rows, cols) = layout.Shape(kind);
                var type = typeOf(e, kind);
                if (dense) _writer.Declare($"{e}.{kind}.weight", denseType, rows, cols);
                else if (type != QuantType.Ternary)
                {
                    _writer.Declare($"{e}.{kind}.packed", DType.U8, rows * PackedNBitMatrix.RowBytesOf(PackedNBitMatrix.BitsOf(type), cols));
                    _writer.Declare($"{e}.{kind}.row_scales", DType.F32, rows);
                    _writer.Declare($"{e}.{kind}.row_zeros", DType.U8, rows);
                }
                else
                {
                    _writer.Declare($"{e}.{kind}.trits", DType.U8, TritPacking.PackedLength((long)rows * cols));
                    _writer.Declare($"{e}.{kind}.scales", DType.BF16, rows, 2);
                }
            }
    }

    public void WriteExpert(IReadOnlyDictionary<string, QuantizedWeight> byKind)
    {
        int e = _next++;
        foreach (var kind in _layout.Kinds)
        {
            var q = byKind[kind];
            if (q.Type != _typeOf(e, kind)) throw new InvalidOperationException($"expert {e} {kind}: quantized as {q.Type}, declared {_typeOf(e, kind)}");
            if (!_dense && q.Type != QuantType.Ternary)
            {
                var p = PackedNBitMatrix.FromQuantized(q);
                _writer.Write<byte>(p.Packed);
                _writer.Write<float>(p.RowScales);
                _writer.Write<byte>(p.RowZeros);
            }
            else if (!_dense)
            {
                _writer.Write<byte>(TritPacking.Pack(q.Codes));
                _writer.Write<ushort>(q.TernaryScales());
            }
            else if (_denseType == DType.F32) _writer.Write<float>(q.Dequantized);
            else
            {
                var bf = new ushort[q.Dequantized.Length];
                BFloat16.FromFloat(q.Dequantized, bf);
                _writer.Write<ushort>(bf);
            }
        }
    }

    /// <summary>Adds the layer's report and renames the file into place.</summary>
    public void Complete(LayerReport report)
    {
        // The writer's header is fixed before the data (only hashes are patched), so the report, known only
        // at the end, is a sidecar JSON written atomically after the tensors; the layer counts as done when both exist.
        _writer.Complete();
        AtomicFile.WriteAllText(ReportPath(_writer.Path), JsonSerializer.Serialize(report, ReportJson.Options));
    }
    public static string ReportPath(string layerFile) => layerFile + ".json";

    /// <summary>True when both the layer file and its report exist (the layer is finished).</summary>
    public static bool IsComplete(string path) => File.Exists(path) && File.Exists(ReportPath(path));

    public static LayerReport ReadReport(string path) =>
        JsonSerializer.Deserialize<LayerReport>(File.ReadAllText(ReportPath(path)), ReportJson.Options)
        ?? throw new QmoeException($"{ReportPath(path)}: empty layer report");

    public void Dispose() => _writer.Dispose();
}

/// <summary>Per-layer outcome stored beside a <see cref="LayerResultFile"/>.</summary>
public sealed record LayerReport(
    string Prefix,
    IReadOnlyList<LayerStatistics> Matrices,
    IReadOnlyList<FallbackRecord> Fallbacks,
    IReadOnlyList<CapRecord> Caps,
    double Seconds);

internal static class ReportJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };
}
