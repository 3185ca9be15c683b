using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Models;
using Qmoe.Models.Switch;
using Qmoe.Models.Synth;

namespace Qmoe.Cli;

/// <summary><c>synth --shape switch-base-128 --out DIR [--layers N]</c>: a random HF checkpoint of a real model's shapes.</summary>
internal static class SynthVerb
{
    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = "switch-base-128", Required = true };
        var output = new Option<string>("--out") { Description = "output directory (new or empty)", Required = true };
        var layers = new Option<int?>("--layers") { Description = "layers per stack (default: the real model's); for slices of huge models" };
        var shard = new Option<double>("--shard-gb") { Description = "shard size in GB", DefaultValueFactory = _ => 2.0 };
        var seed = new Option<int>("--seed") { Description = "random seed", DefaultValueFactory = _ => 1 };
        var json = CommonOptions.Json();
        var cmd = new Command("synth", "write a random Hugging Face checkpoint with a real model's shapes (bf16, sharded)") { shape, output, layers, shard, seed, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            string outDir = p.GetValue(output)!;
            if (p.GetValue(layers) is int l && l <= 0) throw new QmoeException($"--layers {l} must be positive");
            var (config, tensors) = p.GetValue(shape) switch
            {
                "switch-base-128" => Switch(SwitchShapes.Base128(p.GetValue(layers))),
                var s => throw new QmoeException($"--shape {s}: unknown (supported: switch-base-128)"),
            };
            var sw = System.Diagnostics.Stopwatch.StartNew();
            SyntheticCheckpoint.Write(outDir, config, tensors, (long)(p.GetValue(shard) * 1e9), p.GetValue(seed), human.WriteLine);
            // A tokenizer so the model runs: the embedded model's SentencePiece (its ids fit any larger vocabulary).
            foreach (var f in new[] { "spiece.model", "tokenizer_config.json", "special_tokens_map.json" })
                File.Copy(Path.Combine(RepoPaths.TinyModel, f), Path.Combine(outDir, f), overwrite: true);
            long parameters = tensors.Sum(t => t.Shape.Aggregate(1L, (a, d) => a * d));
            human.WriteLine($"wrote {outDir}: {parameters / 1e9:F2} B parameters, {tensors.Count} tensors in {sw.Elapsed.TotalSeconds:F0} s");
            return new JsonObject { ["out"] = outDir, ["parameters"] = parameters, ["tensors"] = tensors.Count, ["seconds"] = sw.Elapsed.TotalSeconds };
        }));
        return cmd;
    }

    private static (JsonObject, List<SyntheticCheckpoint.Spec>) Switch(JsonObject config) =>
        (config, SwitchShapes.Tensors(SwitchConfig.From(ConfigReader.FromJson(config, "synth config"))));
}
