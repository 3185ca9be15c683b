using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Codec;
using Qmoe.Compression;
using Qmoe.Models;
using Qmoe.Models.Switch;
using Qmoe.Quantization;

namespace Qmoe.Cli;

/// <summary>
/// The demo's real-width slice: synthetic weights at real shapes. The first <c>experts</c> experts of the first
/// sparse encoder layer of a synthetic switch-base-128 (the weights <c>qmoe synth --shape switch-base-128</c> writes:
/// N(0, 1/fan_in), bf16; wi [3072, 768], wo [768, 3072]), each quantized by ternary GPTQ on its own correlated
/// synthetic inputs (per-column scales and a rank-16 shared component; wi on X, wo on relu(Q_wi X) as the pipeline
/// does), then encoded into a compressed file whose bits/param are read back with every byte counted. It measures
/// the format and the quantizer at real widths, not the quality of a trained model.
/// </summary>
internal static class DemoSlice
{
    public const string Layer = "encoder.block.1.layer.1.mlp";

    public sealed record Result(int Experts, int Tokens, ModelStatistics Stats, double[][] RelativeErrors,
        double[][] ZeroFractions, string[] Kinds, double Seconds)
    {
        public JsonObject ToJson() => new()
        {
            ["description"] = "synthetic weights at real shapes: switch-base-128 experts (wi 3072x768, wo 768x3072) from `qmoe synth`, ternary GPTQ on correlated synthetic inputs",
            ["experts"] = Experts, ["tokens_per_expert"] = Tokens, ["parameters"] = Stats.ExpertParameters,
            ["bits_per_param"] = DemoReport.BitsBreakdown(Stats), ["zero_fraction"] = Stats.ZeroFraction,
            ["relative_error"] = RelativeErrors.SelectMany(r => r).Average(), ["seconds"] = Seconds,
            ["groups"] = new JsonArray([.. Kinds.Select((k, i) => (JsonNode)new JsonObject
            {
                ["name"] = $"{Layer}.experts.{k}",
                ["expert_relative_errors"] = DemoReport.Array(RelativeErrors[i]),
                ["expert_zero_fractions"] = DemoReport.Array(ZeroFractions[i]),
            })]),
        };
    }

    /// <param name="dir">where the slice's compressed file is written (replaced)</param>
    /// <param name="experts">experts of the layer to take (at most 128)</param>
    /// <param name="tokens">calibration tokens per expert</param>
    public static Result Run(string dir, int experts, int tokens, Action<string>? progress = null)
    {
        var sw = Stopwatch.StartNew();
        var shape = SynthShape.Named("switch-base-128");
        if (experts is < 1 || experts > shape.Experts) throw new QmoeException($"--slice-experts {experts}: must be 1..{shape.Experts}");
        var layout = new SwitchExpertLayout(shape.Hidden, shape.Ffn);
        var options = new GptqOptions { Type = QuantType.Ternary };
        if (Directory.Exists(dir)) Directory.Delete(dir, true);
        var config = shape.Config();
        config["num_experts"] = experts;
        var kinds = layout.Stages.SelectMany(s => s).ToArray();
        var quantized = kinds.ToDictionary(k => k, _ => new TernaryMatrix[experts]);
        var errors = kinds.Select(_ => new double[experts]).ToArray();
        var zeros = kinds.Select(_ => new double[experts]).ToArray();
        // Experts in groups of one per thread: GptqBatch spreads a group over the cores.
        int group = Math.Max(1, Qmoe.Threads.Count);
        for (int g0 = 0; g0 < experts; g0 += group)
        {
            int g1 = Math.Min(experts, g0 + group);
            progress?.Invoke($"real-width slice: experts {g0}–{g1 - 1} of {experts}");
            var inputs = Enumerable.Range(g0, g1 - g0).Select(e => SyntheticLayer.CorrelatedInputs(new Random(18_000 + e), tokens, shape.Hidden)).ToArray();
            var deq = new Dictionary<(int, string), float[]>();
            for (int s = 0; s < layout.Stages.Count; s++)
            {
                var stageInputs = inputs.Select((x, i) => s == 0 ? x : layout.StageInput(s, x, tokens,
                    kind => new Models.Layers.Matrix(deq[(g0 + i, kind)], layout.Shape(kind).Rows, layout.Shape(kind).Cols))).ToArray();
                foreach (var kind in layout.Stages[s])
                {
                    var (rows, cols) = layout.Shape(kind);
                    var w = new float[(long)(g1 - g0) * rows * cols];
                    var h = new float[(long)(g1 - g0) * cols * cols];
                    var names = new string[g1 - g0];
                    for (int i = 0; i < g1 - g0; i++)
                    {
                        names[i] = layout.WeightName(Layer, g0 + i, kind);
                        SynthCheckpoint.Values(shape, names[i]).CopyTo(w, (long)i * rows * cols);
                        var hi = h.AsMemory((int)((long)i * cols * cols), cols * cols);
                        var acc = new HessianAccumulator(cols, scratch: hi); // H's own span holds each chunk's product
                        acc.Add(stageInputs[i], tokens);
                        acc.WriteHessian(hi.Span);
                    }
                    var q = GptqBatch.Quantize(w, h, rows, cols, names, Enumerable.Repeat((long)tokens, g1 - g0).ToArray(), options).Experts;
                    int k = Array.IndexOf(kinds, kind);
                    for (int i = 0; i < g1 - g0; i++)
                    {
                        int e = g0 + i;
                        var (err, total) = ExpertLayerQuantizer.OutputError(w.AsSpan(i * rows * cols, rows * cols), q[i].Dequantized, stageInputs[i], tokens, rows, cols);
                        errors[k][e] = total > 0 ? err / total : 0;
                        zeros[k][e] = (double)q[i].Dequantized.Count(v => v == 0f) / ((long)rows * cols);
                        quantized[kind][e] = new TernaryMatrix(rows, cols, q[i].Codes, q[i].TernaryScales());
                        deq[(e, kind)] = q[i].Dequantized;
                    }
                }
            }
            // The group's weights, Hessians and GPTQ copies (large-object-heap arrays, ~0.5 GB) are garbage now:
            // collect them before the next group so the peak stays at one group (as the pipeline does).
            System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
        progress?.Invoke("real-width slice: encoding");
        using (var writer = new CompressedModelWriter(dir, config, new JsonObject { ["method"] = "gptq", ["calibration"] = "correlated synthetic inputs" }))
        {
            foreach (var kind in kinds) writer.AddExpertGroup(Layer, kind, quantized[kind]);
            writer.Complete();
        }
        using var model = CompressedModel.Open(dir);
        var stats = ModelStatistics.Compute(model);
        return new Result(experts, tokens, stats, errors, zeros, kinds, sw.Elapsed.TotalSeconds);
    }
}
