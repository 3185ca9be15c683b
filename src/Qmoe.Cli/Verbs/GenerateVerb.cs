using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Qmoe.Runtime;

namespace Qmoe.Cli;

/// <summary><c>generate --model M --prompt TEXT [--max-new-tokens N]</c>: greedy decoding with a KV cache.</summary>
internal static class GenerateVerb
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string>("--prompt") { Description = "prompt text; <extra_id_k> markers become sentinels", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "maximum new tokens", DefaultValueFactory = _ => 20 };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var device = DeviceOption.Create();
        var cmd = new Command("generate", "greedy generation from a prompt") { model, prompt, maxNew, threads, device, json };
        cmd.SetAction(p => CliRunner.Run(p.GetValue(json), human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            int n = p.GetValue(maxNew);
            if (n <= 0) throw new QmoeException($"--max-new-tokens {n} must be positive");
            using var m = ModelLoader.Open(p.GetValue(model)!, DeviceOption.KernelFactory(p.GetValue(device)!));
            var r = Generation.Run(m, p.GetValue(prompt)!, n);
            human.WriteLine(r.Text);
            human.WriteLine($"({r.OutputIds.Length} ids, {r.TokensPerSecond:F1} tokens/s; CPU kernels: {Qmoe.Kernels.KernelIsas.Name(Qmoe.Kernels.KernelIsas.Best)})");
            return new JsonObject
            {
                ["input_ids"] = new JsonArray(r.InputIds.Select(i => JsonValue.Create(i)).ToArray<JsonNode?>()),
                ["output_ids"] = new JsonArray(r.OutputIds.Select(i => JsonValue.Create(i)).ToArray<JsonNode?>()),
                ["text"] = r.Text, ["tokens_per_s"] = r.TokensPerSecond,
            };
        }));
        return cmd;
    }
}
