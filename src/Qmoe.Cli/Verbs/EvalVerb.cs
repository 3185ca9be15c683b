using System.CommandLine;
using System.Text.Json.Nodes;
using Qmoe.Runtime;

namespace Qmoe.Cli;

/// <summary><c>eval --model M --data F --split S [--limit N] [--threads N] [--no-capacity]</c>: mean CE on a split.</summary>
internal static class EvalVerb
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var data = new Option<string>("--data") { Description = "safetensors file with S.input_ids/S.labels (or S.raw_blocks)", Required = true };
        var split = new Option<string>("--split") { Description = "split name, e.g. validation", Required = true };
        var limit = new Option<int?>("--limit") { Description = "evaluate only the first N examples" };
        var threads = CommonOptions.Threads();
        var noCapacity = new Option<bool>("--no-capacity") { Description = "unlimited expert capacity (no dropped tokens)" };
        var json = CommonOptions.Json();
        var device = DeviceOption.Create();
        var cmd = new Command("eval", "mean cross-entropy of a model on a data split") { model, data, split, limit, threads, noCapacity, device, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            if (p.GetValue(limit) is int l && l <= 0) throw new QmoeException($"--limit {l} must be positive");
            using var m = ModelLoader.Open(p.GetValue(model)!, DeviceOption.KernelFactory(p.GetValue(device)!));
            m.UseCapacity = !p.GetValue(noCapacity);
            var set = EvalSet.Load(p.GetValue(data)!, p.GetValue(split)!, m.VocabSize, p.GetValue(limit), m.IsDecoderOnly);
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
