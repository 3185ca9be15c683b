using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Runtime;

namespace Qmoe.Cli;

/// <summary>
/// <c>eval --model M (--data F --split S [--limit N] | --text FILE [--block 128] [--max-blocks 64]) [--threads N] [--no-capacity]</c>:
/// mean CE on a split of a token file, or on raw text (metric: docs/SPEC.md).
/// </summary>
internal static class EvalVerb
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var data = new Option<string?>("--data") { Description = "safetensors file with S.input_ids/S.labels (or S.raw_blocks)" };
        var split = new Option<string?>("--split") { Description = "split name, e.g. validation" };
        var text = new Option<string?>("--text") { Description = "raw text file (decoder-only: lines joined, tokenized, cut into blocks; Switch: span corruption)" };
        var block = new Option<int>("--block") { Description = "tokens per block with --text (decoder-only)", DefaultValueFactory = _ => 128 };
        var maxBlocks = new Option<int>("--max-blocks") { Description = "at most this many blocks (examples) with --text; 0: every block of the file", DefaultValueFactory = _ => 64 };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N examples" };
        var threads = CommonOptions.Threads();
        var noCapacity = new Option<bool>("--no-capacity") { Description = "unlimited expert capacity (no dropped tokens)" };
        var json = CommonOptions.Json();
        var device = DeviceOption.Create();
        var cmd = new Command("eval", "mean cross-entropy of a model on a data split") { model, data, split, text, block, maxBlocks, limit, threads, noCapacity, device, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            if (p.GetValue(limit) is int l && l <= 0) throw new QmoeException($"--limit {l} must be positive");
            string? textFile = p.GetValue(text);
            if ((textFile == null) == (p.GetValue(data) == null)) throw new QmoeException("give exactly one of --data F --split S or --text FILE");
            if (textFile == null && p.GetValue(split) == null) throw new QmoeException("--data needs --split");
            using var m = ModelLoader.Open(p.GetValue(model)!, DeviceOption.KernelFactory(p.GetValue(device)!));
            m.UseCapacity = !p.GetValue(noCapacity);
            var set = textFile != null
                ? TextEval.Load(m, textFile, p.GetValue(block), p.GetValue(maxBlocks))
                : EvalSet.Load(p.GetValue(data)!, p.GetValue(split)!, m.VocabSize, p.GetValue(limit), m.IsDecoderOnly);
            var r = m.Evaluate(set);
            human.WriteLine($"{r.Split}: {r.Examples} examples, {r.Tokens} tokens, mean CE {r.MeanCe:F6} nats, {r.TokensPerSecond:F0} tokens/s ({Qmoe.Threads.Count} threads)");
            return new JsonObject
            {
                ["split"] = r.Split, ["examples"] = r.Examples, ["tokens"] = r.Tokens,
                ["mean_ce"] = r.MeanCe, ["tokens_per_s"] = r.TokensPerSecond,
            };
        }));
        return cmd;
    }
}
