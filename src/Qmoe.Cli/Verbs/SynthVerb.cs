using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Models;

namespace Qmoe.Cli;

/// <summary>
/// <c>synth --shape PRESET --out DIR [--layers N] [--experts N] [--seed S] [--shard-gb G] [--tokenizer spiece.model]</c>:
/// a random bf16 Hugging Face checkpoint with a real model's exact shapes, for scale runs.
/// </summary>
internal static class SynthVerb
{
    /// <summary>The SentencePiece model embedded in the CLI (switch-tiny-8's; 3900 pieces, below both vocabularies).</summary>
    private const string EmbeddedTokenizer = "Qmoe.Cli.spiece.model";

    public static Command Create()
    {
        var shape = new Option<string>("--shape") { Description = $"a preset: {string.Join(", ", Qmoe.Models.ModelFamilies.SynthPresetNames)}", Required = true };
        var output = new Option<string>("--out") { Description = "output directory (must not exist)", Required = true };
        var layers = new Option<int?>("--layers") { Description = "keep only the first N layers (Switch: N encoder + N decoder)" };
        var experts = new Option<int?>("--experts") { Description = "keep only the first N experts of each sparse layer (slices of huge models)" };
        var seed = new Option<ulong>("--seed") { Description = "random seed", DefaultValueFactory = _ => 0 };
        var shardGb = new Option<double>("--shard-gb") { Description = "maximum shard size in GiB", DefaultValueFactory = _ => 2.0 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "spiece.model to copy (default: the embedded 3900-piece model)" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("synth", "write a random checkpoint with a real model's shapes (bf16, sharded)")
            { shape, output, layers, experts, seed, shardGb, tokenizer, threads, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            var s = SynthShape.Named(p.GetValue(shape)!);
            if (p.GetValue(layers) is int n)
            {
                if (n <= 0 || n > s.Layers) throw new QmoeException($"--layers {n} must be in 1..{s.Layers}");
                s = s with { Layers = n };
            }
            if (p.GetValue(experts) is int k)
            {
                if (k <= 0 || k > s.Experts) throw new QmoeException($"--experts {k} must be in 1..{s.Experts}");
                s = s with { Experts = k, TopK = Math.Min(s.TopK, k) };
            }
            double gb = p.GetValue(shardGb);
            if (!(gb > 0)) throw new QmoeException($"--shard-gb {gb} must be positive");
            string? tok = p.GetValue(tokenizer);
            string? extracted = null;
            if (tok == null)
            {
                extracted = Path.Combine(Path.GetTempPath(), $"qmoe-spiece-{Environment.ProcessId}.model");
                using (var res = typeof(SynthVerb).Assembly.GetManifestResourceStream(EmbeddedTokenizer)
                    ?? throw new InvalidOperationException("embedded tokenizer missing"))
                using (var f = File.Create(extracted)) res.CopyTo(f);
                tok = extracted;
            }
            try
            {
                var r = SynthCheckpoint.Write(s, p.GetValue(output)!, tok, p.GetValue(seed), (long)(gb * (1L << 30)));
                human.WriteLine($"wrote {r.Dir}: {r.Parameters:N0} parameters, {r.Bytes / (double)(1L << 30):F2} GiB in {r.Shards} shard(s), {r.Seconds:F1} s");
                return new JsonObject
                {
                    ["out"] = r.Dir, ["parameters"] = r.Parameters, ["bytes"] = r.Bytes, ["shards"] = r.Shards, ["seconds"] = r.Seconds,
                };
            }
            finally { if (extracted != null) File.Delete(extracted); }
        }));
        return cmd;
    }
}
