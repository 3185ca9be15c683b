using System.CommandLine;
using Qmoe.Runtime;
using Qmoe.Server;

namespace Qmoe.Cli;

/// <summary>
/// <c>serve --model M [--host 127.0.0.1] [--port 8080] [--max-batch 16] [--api-key K]</c>: an OpenAI-compatible HTTP
/// server (completions and chat completions, streaming or not) with continuous batching, until Ctrl+C.
/// </summary>
internal static class ServeVerb
{
    public static Command Create()
    {
        var model = CommonOptions.Model();
        var host = new Option<string>("--host") { Description = "address to bind (loopback by default)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port)", DefaultValueFactory = _ => 8080 };
        var maxBatch = new Option<int>("--max-batch") { Description = "sequences decoded together per step", DefaultValueFactory = _ => 16 };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY' (default: QMOE_API_KEY if set)" };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "largest request body accepted", DefaultValueFactory = _ => 1 << 20 };
        var maxTokens = new Option<int?>("--max-tokens-limit") { Description = "most tokens one request may generate (default: the model's context)" };
        var threads = CommonOptions.Threads();
        var cmd = new Command("serve", "OpenAI-compatible HTTP server with continuous batching") { model, host, port, maxBatch, apiKey, maxBody, maxTokens, threads };
        cmd.SetAction(p => CliRunner.Run(false, human =>
        {
            CommonOptions.ApplyThreads(p.GetValue(threads));
            var options = new ServerOptions
            {
                Host = p.GetValue(host)!, Port = p.GetValue(port), MaxBatch = p.GetValue(maxBatch),
                ApiKey = p.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("QMOE_API_KEY") is { Length: > 0 } k ? k : null),
                MaxBodyBytes = p.GetValue(maxBody), MaxTokensLimit = p.GetValue(maxTokens),
            };
            options.Validate();
            string dir = p.GetValue(model)!;
            var runnable = ModelLoader.Open(dir);
            ServedModel served;
            try { served = new ServedModel(runnable, dir, options.MaxBatch); }
            catch { runnable.Dispose(); throw; }
            QmoeServer server;
            try { server = QmoeServer.StartAsync(served, options, line => Console.Error.WriteLine(line), CliRunner.Verbose).GetAwaiter().GetResult(); }
            catch { served.Dispose(); throw; }
            human.WriteLine($"serving {served.Id} ({runnable.Family}) on {server.BaseAddress} (max batch {options.MaxBatch}, "
                + $"chat: {(served.Chat.UsesTemplate ? "model's chat template" : "role-prefixed fallback, the model has no chat template")}"
                + $"{(options.ApiKey != null ? ", API key required" : "")}); Ctrl+C stops");
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return null;
        }));
        return cmd;
    }
}
